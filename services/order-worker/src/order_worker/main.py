"""order-worker: consumes OrderPlaced, provisions with the carrier, publishes the outcome."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import uvicorn
from fastapi import FastAPI
from mport_shared.events import OrderPlaced
from mport_shared.http import operations_router
from mport_shared.logging import configure_logging
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

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(
            base_url=settings.carrier_base_url,
            timeout=settings.carrier_timeout_s,
            # httpcore checks every pooled connection (one poll() each) on every request and
            # response, so a pool larger than the carrier calls really in flight costs CPU on
            # each call; kept-alive and maximum are equal so bursts do not churn connections.
            limits=httpx.Limits(
                max_connections=settings.carrier_max_connections,
                max_keepalive_connections=settings.carrier_max_connections,
            ),
        ) as client:
            provisioning = OrderProvisioning(
                sessions=runtime.sessions,
                carrier=Tmf622Carrier(client),
                carrier_wait_s=settings.carrier_wait_s,
            )
            runtime.handlers[OrderPlaced.event_type] = provisioning.on_order_placed
            await runtime.start()
            try:
                yield
            finally:
                await runtime.stop()

    app = FastAPI(title="mPort order-worker", lifespan=lifespan)
    app.include_router(
        operations_router({"database": runtime.database_ready, "broker": runtime.broker_ready})
    )
    return app


def main() -> None:
    settings = load_settings(OrderWorkerSettings)
    configure_logging(service=SERVICE, level=settings.log_level, json=settings.log_json)
    uvicorn.run(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        timeout_graceful_shutdown=int(settings.shutdown_grace_s),
    )


if __name__ == "__main__":
    main()
