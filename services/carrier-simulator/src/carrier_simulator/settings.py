"""The carrier simulator's settings, read from `CARRIER_SIM_*` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# The carrier's catalog as the seed's products map onto it: add-ons, SIM operations, plans.
DEFAULT_OFFERINGS: tuple[str, ...] = (
    "Surf-50GB",
    "Surf-15GB",
    "Surf-5GB",
    "Surf-1GB",
    "Sky-50GB",
    "Sky-25GB",
    "Sky-10GB",
    "Nettvern",
    "Tvilling",
    "Datakort",
    "SIM-Hoved",
    "SIM-Bestill",
    "SIM-Aktiver",
    "BT-A-3GB",
    "BT-B-5GB",
    "BT-C-10GB",
    "BT-D-25GB",
    "BT-E-50GB",
    "BT-F-100GB",
)

# A SIM shipped by post can take a couple of days; nothing a test needs is slower than that.
MAX_LATENCY_MS = 48 * 3600 * 1000


class SimulatorSettings(BaseSettings):
    """Where the simulator listens and how slow, flaky and strict it starts out."""

    model_config = SettingsConfigDict(env_prefix="CARRIER_SIM_", extra="ignore", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8081, ge=1, le=65535)
    latency_ms: int = Field(default=0, ge=0, le=MAX_LATENCY_MS)
    # Each order takes latency_ms plus a uniform random share of this, decided when it arrives.
    latency_jitter_ms: int = Field(default=0, ge=0, le=MAX_LATENCY_MS)
    failure_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    unavailable_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    # Absent altogether: every TMF622 route answers 503 and no notification goes out.
    down: bool = False
    # A ProductOrderStateChangeEvent for the `acknowledged` an order starts in. Off by default:
    # being created is no state change (TMF622 has ProductOrderCreateEvent for that), and the
    # answer to the POST already says it; on, every hub hears each order from its first state.
    notify_on_create: bool = False
    # Share of notifications never sent (per notification and hub), to simulate lost ones.
    notification_drop_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    notification_timeout_s: float = Field(default=5.0, gt=0)
    notification_retry_initial_delay_s: float = Field(default=0.5, gt=0)
    notification_retry_max_delay_s: float = Field(default=30.0, gt=0)
    # A notification not delivered this long after its state change is dropped with a log line.
    notification_max_age_s: float = Field(default=3600.0, gt=0)
    # Requests in flight per hub; each order always uses the same one, which keeps its order.
    notification_concurrency: int = Field(default=8, ge=1, le=256)
    # Notifications waiting per hub; beyond it the oldest is dropped, so a listener gone for
    # hours cannot grow the process without bound (~1.5 kB each).
    notification_max_pending: int = Field(default=100_000, ge=1)
    # When set, orders and hubs survive a restart (JSON, rewritten atomically).
    state_file: Path | None = None
    state_save_interval_s: float = Field(default=0.5, gt=0)
    # NoDecode: the environment gives a comma-separated list, not JSON.
    known_offerings: Annotated[tuple[str, ...], NoDecode] = DEFAULT_OFFERINGS
    # Orders are kept in memory; the oldest are forgotten beyond this so a long benchmark
    # cannot grow the process without bound.
    max_orders: int = Field(default=10_000, ge=1)
    # Fixes the random failures and outages, for reproducible runs.
    seed: int | None = None
    log_level: str = "INFO"
    log_json: bool = True

    @field_validator("known_offerings", mode="before")
    @classmethod
    def _split_offerings(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value
