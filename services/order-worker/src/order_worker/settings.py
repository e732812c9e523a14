"""order-worker settings, from the environment."""

from __future__ import annotations

from mport_shared.settings import ServiceSettings
from pydantic import Field


class OrderWorkerSettings(ServiceSettings):
    database_url: str = "sqlite+aiosqlite:///var/order-worker.db"
    http_port: int = 8091
    carrier_base_url: str = "http://127.0.0.1:8081/tmf-api/productOrderingManagement/v5"
    carrier_timeout_s: float = Field(default=10.0, gt=0)
    # How long one delivery waits for the carrier to finish before handing the order to a retry.
    carrier_wait_s: float = Field(default=30.0, gt=0)
