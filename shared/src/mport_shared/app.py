"""How every service becomes a running process: a FastAPI app whose lifespan starts and stops
the service's runtime, served by uvicorn with the same shutdown behaviour everywhere."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI

from mport_shared.http import instrument, operations_router
from mport_shared.logging import configure_logging
from mport_shared.ops.api import StuckOrders, ops_router
from mport_shared.service import ServiceRuntime
from mport_shared.settings import ServiceSettings
from mport_shared.tracing import FASTAPI_TELEMETRY_OFF, configure_tracing, instrument_app

# Runs before the runtime starts; what it enters on the stack is closed after the runtime stops.
Setup = Callable[[AsyncExitStack], Awaitable[None]]


def service_app(
    *,
    title: str,
    runtime: ServiceRuntime,
    setup: Setup | None = None,
    started: Setup | None = None,
    stuck: StuckOrders | None = None,
    **fastapi: Any,
) -> FastAPI:
    """`setup` runs before the runtime starts (what it enters closes after the runtime stops);
    `started` runs once it has started (what it enters closes first, while the database and the
    outbox relay still work); `stuck` answers GET /ops/stuck-orders (mport-ops stuck)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as resources:
            if setup is not None:
                await setup(resources)
            await runtime.start()
            try:
                async with AsyncExitStack() as background:
                    if started is not None:
                        await started(background)
                    yield
            finally:
                await runtime.stop()

    app = FastAPI(title=title, lifespan=lifespan, telemetry=FASTAPI_TELEMETRY_OFF, **fastapi)
    instrument_app(app)
    app.include_router(operations_router(runtime.readiness_checks()))
    app.include_router(
        ops_router(
            service=runtime.name, token=runtime.settings.ops_api_token, sessions=runtime.sessions,
            outbox=runtime.tables.outbox, stuck=stuck,
        )
    )  # fmt: skip
    instrument(app)
    return app


def serve(app: FastAPI, *, service: str, settings: ServiceSettings) -> None:
    """Log as JSON, trace (exported when OTEL_EXPORTER_OTLP_ENDPOINT is set), serve until
    SIGTERM/SIGINT, then drain (the lifespan stops the runtime)."""
    configure_logging(service=service, level=settings.log_level, json=settings.log_json)
    configure_tracing(service=service)
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        timeout_graceful_shutdown=int(settings.shutdown_grace_s),
    )
