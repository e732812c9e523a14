"""Service settings read from the environment and validated once at start-up."""

from __future__ import annotations

import sys
from typing import TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mport_shared.messaging.connection import broker_addresses


class ServiceSettings(BaseSettings):
    """What every service needs: where the broker and its own database are, and how to log."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    # One broker, or a cluster's nodes: amqp://user:pass@node1:5672,node2:5672,node3:5672/vhost.
    amqp_url: str = Field(default="amqp://guest:guest@127.0.0.1:5672/")
    database_url: str
    # Connections kept open to PostgreSQL, and how many more a burst may open. An extra one is
    # closed on return, so under a steady load above the pool it would cost a server process, a
    # login and every statement prepared again, every few requests; by default work beyond the
    # pool waits for a connection instead (a 2-core database serves no more at once anyway).
    # SQLite ignores both.
    database_pool_size: int = Field(default=20, ge=1, le=500)
    database_max_overflow: int = Field(default=0, ge=0, le=500)
    # SQLite only: one connection whose statements run on the event loop, not on a thread of
    # aiosqlite's (mport_shared.db.InlineSqlite); sessions then take turns on it, so it suits a
    # service whose sessions give the connection back before they wait on the network (the
    # portal's; README, DATABASE_SQLITE_INLINE).
    database_sqlite_inline: bool = False
    log_level: str = "INFO"
    log_json: bool = True
    http_host: str = "127.0.0.1"
    http_port: int
    prefetch: int = Field(default=32, ge=1, le=1000)
    retry_delays_ms: tuple[int, ...] = (1_000, 5_000, 30_000)
    outbox_poll_interval_s: float = Field(default=0.5, gt=0)
    # How often gauges read from the database or the connection are refreshed (outbox backlog,
    # readiness, orders by status): each is one cheap query.
    metrics_interval_s: float = Field(default=5.0, gt=0)
    # Gauges that count a whole table (orders by status): a GROUP BY over 200 000 orders took
    # ~125 ms on the bench's PostgreSQL, so these are read less often.
    table_metrics_interval_s: float = Field(default=30.0, gt=0)
    shutdown_grace_s: float = Field(default=20.0, gt=0)
    # The bearer token of the /ops endpoints `mport-ops outbox` and `stuck` call; unset: no /ops.
    ops_api_token: SecretStr | None = None

    @field_validator("amqp_url")
    @classmethod
    def _names_brokers(cls, value: str) -> str:
        broker_addresses(value)  # its error says what is wrong, never with the password
        return value


SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def load_settings(cls: type[SettingsT]) -> SettingsT:
    """Build the settings or stop the process with a message that names each bad variable."""
    try:
        return cls()
    except ValidationError as exc:
        lines = [f"Invalid configuration for {cls.__name__}:"]
        for error in exc.errors():
            name = "_".join(str(part) for part in error["loc"]).upper()
            lines.append(f"  {name}: {error['msg']}")
        print("\n".join(lines), file=sys.stderr)
        raise SystemExit(2) from None
