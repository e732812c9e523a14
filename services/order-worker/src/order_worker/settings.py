"""order-worker settings, from the environment."""

from __future__ import annotations

from typing import Annotated

from mport_shared.events import OrderKind
from mport_shared.settings import ServiceSettings
from pydantic import Field, SecretStr, field_validator

_DAY = 86_400.0
# How long an order may take with the carrier before it fails: a plan or an add-on is switched
# on within hours, a SIM goes by post.
DEFAULT_DEADLINES_S: dict[OrderKind, float] = {
    OrderKind.ADDON: _DAY,
    OrderKind.PLAN: _DAY,
    OrderKind.SIM_ORDER: 14 * _DAY,
    OrderKind.SIM_ACTIVATION: _DAY,
}
Seconds = Annotated[float, Field(gt=0)]


class OrderWorkerSettings(ServiceSettings):
    database_url: str = "sqlite+aiosqlite:///var/order-worker.db"
    http_port: int = 8091
    carrier_base_url: str = "http://127.0.0.1:8081/tmf-api/productOrderingManagement/v5"
    carrier_timeout_s: Seconds = 10.0
    # Connections to the carrier; calls beyond it wait for one (up to carrier_timeout_s). Enough
    # for a quick carrier: under the bench load 8 to 16 served every call, and with httpx a pool
    # of 64 (the old prefetch * 2) spent ~10% of the worker's CPU looking after idle connections.
    carrier_max_connections: int = Field(default=16, ge=1, le=1000)
    # Where the carrier reaches this worker's listener (TMF622 notifications); by default its own
    # HTTP address. Behind a load balancer or in a pod, the address the carrier can reach.
    carrier_listener_url: str | None = None
    # The token the carrier's notifications must carry; a fresh random one per process if unset.
    carrier_listener_secret: SecretStr | None = None
    # Per order kind (addon, plan, sim_order, sim_activation), seconds from placing to failing;
    # kinds left out keep their default. JSON, e.g. ORDER_DEADLINES_S='{"sim_order": 604800}'.
    order_deadlines_s: dict[OrderKind, Seconds] = Field(default_factory=lambda: dict(DEFAULT_DEADLINES_S))
    # Submitting while the carrier is away: first retry after this, doubling up to the maximum.
    submit_retry_first_s: Seconds = 1.0
    submit_retry_max_s: Seconds = 60.0
    # Looking up an open order no notification has finished: first after this, doubling up to
    # the maximum (and soon after the carrier's expected completion date, when it gives one).
    check_first_s: Seconds = 30.0
    check_max_s: Seconds = 900.0
    check_after_expected_s: Seconds = 5.0
    # A first read this soon after submitting, for carriers that finish at once (0: none).
    carrier_first_look_s: float = Field(default=0.005, ge=0, le=5)
    # How often the reconciler looks for due orders, how many it leases at once, how many carrier
    # calls it makes at once, and how long a lease lasts (longer than any one check can take).
    reconcile_poll_s: Seconds = 1.0
    reconcile_batch: int = Field(default=100, ge=1, le=10_000)
    reconcile_concurrency: int = Field(default=16, ge=1, le=1000)
    lease_s: Seconds = 120.0

    @field_validator("order_deadlines_s", mode="after")
    @classmethod
    def _keep_default_deadlines(cls, value: dict[OrderKind, float]) -> dict[OrderKind, float]:
        return {**DEFAULT_DEADLINES_S, **value}

    @property
    def listener_url(self) -> str:
        if self.carrier_listener_url:
            return self.carrier_listener_url
        host = "127.0.0.1" if self.http_host in ("0.0.0.0", "::", "") else self.http_host
        return f"http://{host}:{self.http_port}"
