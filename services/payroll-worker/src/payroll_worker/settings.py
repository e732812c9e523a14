"""payroll-worker settings, from the environment."""

from __future__ import annotations

from mport_shared.settings import ServiceSettings
from pydantic import Field, SecretStr


class PayrollWorkerSettings(ServiceSettings):
    database_url: str = "sqlite+aiosqlite:///var/payroll-worker.db"
    http_port: int = 8093
    # The bearer token of the internal API (/internal/...), which the portal's admin pages call.
    # Unset: the internal API answers 401 to everyone (the CLI still works).
    payroll_api_token: SecretStr | None = None
    # The wage type (lønnsart) of a line whose order carries none (a policy without one).
    payroll_default_wage_type: str = Field(default="7000", min_length=1, max_length=20)
    # How long an order event waits for others to be decided with it in one transaction (seconds).
    payroll_batch_window_s: float = Field(default=0.05, ge=0, le=1)
