"""payroll-worker: consumes OrderCompleted and OrderFailed and turns each chargeable order into
salary deduction lines in its own database, published as PayrollDeductionRecorded/Reversed
through its outbox; closes pay periods and exports them (CLI and the internal HTTP API)."""

from __future__ import annotations

from fastapi import FastAPI
from mport_shared.app import serve, service_app
from mport_shared.events import OrderCompleted, OrderFailed
from mport_shared.messaging.topology import PAYROLL_WORKER
from mport_shared.service import ServiceRuntime
from mport_shared.settings import load_settings

from payroll_worker.api import internal_api
from payroll_worker.models import tables
from payroll_worker.payroll import Payroll
from payroll_worker.settings import PayrollWorkerSettings

SERVICE = "payroll-worker"


def create_app(settings: PayrollWorkerSettings) -> FastAPI:
    runtime = ServiceRuntime(name=SERVICE, settings=settings, tables=tables, queue=PAYROLL_WORKER)
    payroll = Payroll(
        runtime.sessions,
        default_wage_type=settings.payroll_default_wage_type,
        batch_window_s=settings.payroll_batch_window_s,
    )
    runtime.handlers[OrderCompleted.event_type] = payroll.on_order_completed
    runtime.handlers[OrderFailed.event_type] = payroll.on_order_failed
    app = service_app(title="mPort payroll-worker", runtime=runtime)
    internal_api(app, payroll, token=settings.payroll_api_token)
    app.state.payroll = payroll
    app.state.runtime = runtime
    return app


def main() -> None:
    settings = load_settings(PayrollWorkerSettings)
    serve(create_app(settings), service=SERVICE, settings=settings)
