"""order-worker: consumes OrderPlaced, provisions with the carrier, publishes the outcome."""

from __future__ import annotations

import functools
import os
import secrets
from contextlib import AsyncExitStack

import aiohttp
from fastapi import FastAPI
from mport_shared.app import serve, service_app
from mport_shared.events import OrderPlaced
from mport_shared.messaging.topology import ORDER_WORKER
from mport_shared.service import ServiceRuntime
from mport_shared.settings import load_settings
from mport_shared.tracing import tracing_on

from order_worker.adapters.carrier import Carrier, Tmf622Carrier
from order_worker.domain import Schedule
from order_worker.listener import LISTENER_PATH, ListenerRegistration, NoticeQueue, listener_endpoint
from order_worker.metrics import sample_carrier_orders
from order_worker.models import tables
from order_worker.provisioning import OrderProvisioning
from order_worker.reconciler import Reconciler
from order_worker.settings import OrderWorkerSettings
from order_worker.store import ProvisioningStore
from order_worker.stuck import stuck_carrier_orders

SERVICE = "order-worker"


def schedule_of(settings: OrderWorkerSettings) -> Schedule:
    return Schedule(
        deadlines_s=dict(settings.order_deadlines_s),
        submit_first_s=settings.submit_retry_first_s,
        submit_max_s=settings.submit_retry_max_s,
        check_first_s=settings.check_first_s,
        check_max_s=settings.check_max_s,
        expected_slack_s=settings.check_after_expected_s,
    )


def create_app(settings: OrderWorkerSettings, *, carrier: Carrier | None = None) -> FastAPI:
    """The worker; `carrier` replaces the TMF622 HTTP carrier (tests)."""
    runtime = ServiceRuntime(name=SERVICE, settings=settings, tables=tables, queue=ORDER_WORKER)
    store = ProvisioningStore(runtime.sessions)
    secret = (
        settings.carrier_listener_secret.get_secret_value()
        if settings.carrier_listener_secret
        else secrets.token_urlsafe(32)
    )
    provisioning = OrderProvisioning(
        store=store,
        carrier=carrier or _unset_carrier(),
        schedule=schedule_of(settings),
        first_look_s=settings.carrier_first_look_s,
    )
    notices = NoticeQueue(provisioning.on_notice, concurrency=settings.reconcile_concurrency)
    provisioning.on_notice_ready = notices.put
    runtime.handlers[OrderPlaced.event_type] = provisioning.on_order_placed
    runtime.gauges.add(
        functools.partial(sample_carrier_orders, runtime.sessions),
        interval_s=settings.table_metrics_interval_s,
    )

    async def setup(resources: AsyncExitStack) -> None:
        if carrier is None:
            session = await resources.enter_async_context(
                # aiohttp, not httpx: reading an order from the simulator cost ~0.9 ms of CPU
                # through httpx and ~0.2 ms through aiohttp. The timeout covers a whole call,
                # waiting for a pooled connection included; no proxy from the environment.
                aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(limit=settings.carrier_max_connections),
                    timeout=aiohttp.ClientTimeout(total=settings.carrier_timeout_s),
                    trace_configs=_carrier_trace_configs(),
                )
            )
            provisioning.carrier = Tmf622Carrier(session, settings.carrier_base_url)

    async def started(background: AsyncExitStack) -> None:
        # Closed in reverse: the hub goes first, then the notices and checks in hand finish,
        # while the database and the outbox relay still work.
        grace_s = settings.shutdown_grace_s / 2
        reconciler = Reconciler(
            provisioning=provisioning,
            store=store,
            poll_s=settings.reconcile_poll_s,
            batch=settings.reconcile_batch,
            concurrency=settings.reconcile_concurrency,
            lease_s=settings.lease_s,
        )
        reconciler.start()
        background.push_async_callback(reconciler.stop, grace_s=grace_s)
        notices.start()
        background.push_async_callback(notices.stop, grace_s=grace_s)
        registration = ListenerRegistration(
            carrier=provisioning.carrier,
            sessions=runtime.sessions,
            listener_url=settings.listener_url,
            secret=secret,
        )
        registration.start()
        background.push_async_callback(registration.stop)
        app.state.registration = registration
        app.state.reconciler = reconciler

    app = service_app(
        title="mPort order-worker", runtime=runtime, setup=setup, started=started,
        stuck=stuck_carrier_orders(runtime.sessions),
    )  # fmt: skip
    app.add_route(
        LISTENER_PATH, listener_endpoint(notices, secret=secret), methods=["POST"], include_in_schema=False
    )
    app.state.provisioning = provisioning
    return app


def _carrier_trace_configs() -> list[aiohttp.TraceConfig]:
    """A client span per TMF622 call, with the traceparent in its headers, when tracing is on
    (off, neither the import nor the cost per call)."""
    if not tracing_on(os.environ):
        return []
    from opentelemetry.instrumentation.aiohttp_client import create_trace_config

    return [create_trace_config()]


def _unset_carrier() -> Carrier:
    class _NotYet:
        def __getattr__(self, name: str) -> object:
            raise RuntimeError("the carrier client is made when the app starts")

    return _NotYet()  # type: ignore[return-value]


def main() -> None:
    settings = load_settings(OrderWorkerSettings)
    serve(create_app(settings), service=SERVICE, settings=settings)


if __name__ == "__main__":
    main()
