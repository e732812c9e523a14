"""payroll-worker settings, from the environment."""

from __future__ import annotations

from mport_shared.settings import ServiceSettings


class PayrollWorkerSettings(ServiceSettings):
    database_url: str = "sqlite+aiosqlite:///var/payroll-worker.db"
    http_port: int = 8093
