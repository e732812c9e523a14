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
    # Connections to the carrier; calls beyond it wait for one (up to carrier_timeout_s). Enough
    # for a quick carrier: under the bench load 8 to 16 served every call, and a pool of 64
    # (the old prefetch * 2) spent ~10% of the worker's CPU looking after idle connections.
    # Raise it for a carrier that keeps calls open long (each call holds one for its duration).
    carrier_max_connections: int = Field(default=16, ge=1, le=1000)
