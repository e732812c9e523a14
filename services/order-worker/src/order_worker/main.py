"""order-worker: consumes OrderPlaced, provisions with the carrier, publishes the outcome."""

from __future__ import annotations

from contextlib import AsyncExitStack

import httpx
from fastapi import FastAPI
from mport_shared.app import serve, service_app
from mport_shared.events import OrderPlaced
from mport_shared.messaging.topology import ORDER_WORKER
from mport_shared.service import ServiceRuntime
from mport_shared.settings import load_settings

from order_worker.adapters.carrier import Tmf622Carrier
from order_worker.handlers import OrderProvisioning
from order_worker.models import tables
from order_worker.settings import OrderWorkerSettings

SERVICE = "order-worker"


def create_app(settings: OrderWorkerSettings) -> FastAPI:
    runtime = ServiceRuntime(name=SERVICE, settings=settings, tables=tables, queue=ORDER_WORKER)

    async def setup(resources: AsyncExitStack) -> None:
        client = await resources.enter_async_context(
            httpx.AsyncClient(
                base_url=settings.carrier_base_url,
                timeout=settings.carrier_timeout_s,
                # httpcore checks every pooled connection (one poll() each) on every request and
                # response, so a pool larger than the carrier calls really in flight costs CPU on
                # each call; kept-alive and maximum are equal so bursts do not churn connections.
                limits=httpx.Limits(
                    max_connections=settings.carrier_max_connections,
                    max_keepalive_connections=settings.carrier_max_connections,
                ),
            )
        )
        provisioning = OrderProvisioning(
            sessions=runtime.sessions, carrier=Tmf622Carrier(client), carrier_wait_s=settings.carrier_wait_s
        )
        runtime.handlers[OrderPlaced.event_type] = provisioning.on_order_placed

    return service_app(title="mPort order-worker", runtime=runtime, setup=setup)


def main() -> None:
    settings = load_settings(OrderWorkerSettings)
    serve(create_app(settings), service=SERVICE, settings=settings)


if __name__ == "__main__":
    main()
