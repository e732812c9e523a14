"""payroll-worker: runs with its health and metrics endpoints; its event handlers are not built yet,
so it does not consume: its durable queue keeps every event for when they are."""

from __future__ import annotations

from fastapi import FastAPI
from mport_shared.app import serve, service_app
from mport_shared.service import ServiceRuntime
from mport_shared.settings import load_settings

from payroll_worker.models import tables
from payroll_worker.settings import PayrollWorkerSettings

SERVICE = "payroll-worker"


def create_app(settings: PayrollWorkerSettings) -> FastAPI:
    runtime = ServiceRuntime(name=SERVICE, settings=settings, tables=tables)
    return service_app(title="mPort payroll-worker", runtime=runtime)


def main() -> None:
    settings = load_settings(PayrollWorkerSettings)
    serve(create_app(settings), service=SERVICE, settings=settings)
