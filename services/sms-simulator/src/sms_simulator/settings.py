"""The SMS gateway simulator's settings, read from `SMS_SIM_*` environment variables."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

MAX_LATENCY_MS = 10 * 60 * 1000


class SimulatorSettings(BaseSettings):
    """Where the simulator listens, whom it lets send, and how unreliable it starts out."""

    model_config = SettingsConfigDict(env_prefix="SMS_SIM_", extra="ignore", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8082, ge=1, le=65535)
    # The one sendsms-user (the sms-worker's defaults).
    username: str = "mport"
    password: SecretStr = SecretStr("mport-local")
    # Every sendsms answer waits this long (a slow gateway; what it takes, it takes at once).
    latency_ms: int = Field(default=0, ge=0, le=MAX_LATENCY_MS)
    # Share of sendsms requests answered 503 `Temporal failure, try again later.` (nothing sent).
    unavailable_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    # Every request answered 403 `Not routable. Do not try again.`, or those to these prefixes.
    reject_all: bool = False
    reject_prefixes: Annotated[tuple[str, ...], NoDecode] = ()
    # Share of SMS reported undelivered (type 2) instead of delivered, and numbers always so.
    undelivered_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    undelivered_prefixes: Annotated[tuple[str, ...], NoDecode] = ()
    # Delay before the first delivery report (8, at the SMSC), and again before the final one.
    dlr_delay_ms: int = Field(default=200, ge=0, le=MAX_LATENCY_MS)
    dlr_timeout_s: float = Field(default=5.0, gt=0)
    # A report not taken (no answer, not 2xx) is tried again this many times, a second apart.
    dlr_retries: int = Field(default=8, ge=0, le=100)
    # Messages kept for GET /messages; the oldest are forgotten beyond this.
    max_messages: int = Field(default=10_000, ge=1)
    seed: int | None = None
    log_level: str = "INFO"
    log_json: bool = True

    @field_validator("reject_prefixes", "undelivered_prefixes", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip().lstrip("+") for part in value.split(",") if part.strip())
        return value
