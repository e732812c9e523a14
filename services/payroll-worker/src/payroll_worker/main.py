"""payroll-worker: runs with its health and metrics endpoints; its event handlers are not built yet,
so it does not consume: its durable queue keeps every event for when they are."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI
from mport_shared.http import operations_router
from mport_shared.logging import configure_logging
from mport_shared.service import ServiceRuntime
from mport_shared.settings import load_settings

from payroll_worker.models import tables
from payroll_worker.settings import PayrollWorkerSettings

SERVICE = "payroll-worker"


def create_app(settings: PayrollWorkerSettings) -> FastAPI:
    runtime = ServiceRuntime(name=SERVICE, settings=settings, tables=tables)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(title="mPort payroll-worker", lifespan=lifespan)
    app.include_router(
        operations_router({"database": runtime.database_ready, "broker": runtime.broker_ready})
    )
    return app


def main() -> None:
    settings = load_settings(PayrollWorkerSettings)
    configure_logging(service=SERVICE, level=settings.log_level, json=settings.log_json)
    uvicorn.run(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        timeout_graceful_shutdown=int(settings.shutdown_grace_s),
    )
