"""sms-worker: consumes VerificationRequested and sends each code by SMS at most once through the
SMS gateway (Kannel's HTTP sendsms; the simulator locally), and turns the gateway's delivery
reports (`GET /dlr`) into VerificationCodeSent / VerificationDelivered / VerificationDeliveryFailed
for the portal. Its table `sms_deliveries` records each SMS (never its code)."""

from __future__ import annotations

import os
import secrets
from contextlib import AsyncExitStack

import httpx
from fastapi import FastAPI
from mport_shared.app import serve, service_app
from mport_shared.events import VerificationRequested
from mport_shared.messaging.topology import SMS_WORKER
from mport_shared.service import ServiceRuntime
from mport_shared.settings import load_settings
from mport_shared.tracing import tracing_on
from pydantic import SecretStr

from sms_worker.adapters.gateway import DlrUrl, KannelGateway, SmsGateway
from sms_worker.models import tables
from sms_worker.reports import DLR_PATH, dlr_endpoint
from sms_worker.sending import SmsSending
from sms_worker.settings import SmsWorkerSettings
from sms_worker.store import SqlDeliveryStore

SERVICE = "sms-worker"


def create_app(settings: SmsWorkerSettings, *, gateway: SmsGateway | None = None) -> FastAPI:
    """The worker; `gateway` replaces the Kannel HTTP gateway (tests)."""
    runtime = ServiceRuntime(name=SERVICE, settings=settings, tables=tables, queue=SMS_WORKER)
    store = SqlDeliveryStore(runtime.sessions)
    secret = (
        settings.sms_dlr_secret.get_secret_value() if settings.sms_dlr_secret else secrets.token_urlsafe(32)
    )
    sending = SmsSending(
        store=store,
        gateway=gateway or _unset_gateway(),
        allowed_prefixes=settings.sms_allowed_prefixes,
        retry_first_s=settings.sms_retry_first_s,
        retry_max_s=settings.sms_retry_max_s,
        min_remaining_s=settings.sms_min_remaining_s,
    )
    runtime.handlers[VerificationRequested.event_type] = sending.on_verification_requested

    async def setup(resources: AsyncExitStack) -> None:
        if gateway is None:
            client = await resources.enter_async_context(
                # No proxy from the environment: the gateway is reached directly.
                httpx.AsyncClient(timeout=settings.sms_gateway_timeout_s, trust_env=False)
            )
            if tracing_on(os.environ):
                # A client span per sendsms, with the traceparent in its headers (its query, which
                # holds the password and the code, is redacted from the span: mport_shared.tracing).
                from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

                HTTPXClientInstrumentor.instrument_client(client)
            sending.gateway = KannelGateway(
                client,
                url=settings.sms_gateway_url,
                username=settings.sms_gateway_username,
                password=settings.sms_gateway_password,
                sender=settings.sms_sender,
                dlr_url=DlrUrl(base_url=settings.dlr_base_url, path=DLR_PATH, secret=SecretStr(secret)),
            )

    app = service_app(title="mPort sms-worker", runtime=runtime, setup=setup)
    app.add_route(DLR_PATH, dlr_endpoint(store, secret=secret), methods=["GET"], include_in_schema=False)
    app.state.sending = sending
    app.state.store = store
    return app


def _unset_gateway() -> SmsGateway:
    class _NotYet:
        async def send(self, *, to: str, text: str, delivery_id: str) -> object:
            raise RuntimeError("the gateway client is made when the app starts")

    return _NotYet()  # type: ignore[return-value]


def main() -> None:
    settings = load_settings(SmsWorkerSettings)
    serve(create_app(settings), service=SERVICE, settings=settings)


if __name__ == "__main__":
    main()
