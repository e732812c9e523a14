"""Settings are validated once at start, and a bad value stops the service with a clear message."""

from __future__ import annotations

import pytest
from mport_shared.settings import ServiceSettings, load_settings


class ExampleSettings(ServiceSettings):
    database_url: str = "sqlite+aiosqlite:///var/x.db"
    http_port: int = 9999


def test_bad_values_stop_the_service_naming_each_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HTTP_PORT", "not-a-port")
    monkeypatch.setenv("PREFETCH", "0")
    with pytest.raises(SystemExit) as stopped:
        load_settings(ExampleSettings)
    assert stopped.value.code == 2
    message = capsys.readouterr().err
    assert "HTTP_PORT" in message
    assert "PREFETCH" in message


def test_an_amqp_url_that_names_no_broker_stops_the_service_without_showing_the_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AMQP_URL", "amqp://mport:hunter2@rabbit-0:5672,,rabbit-2:5672/mport")
    with pytest.raises(SystemExit):
        load_settings(ExampleSettings)
    message = capsys.readouterr().err
    assert "AMQP_URL" in message
    assert "an empty host" in message
    assert "hunter2" not in message


def test_amqp_url_may_list_a_clusters_nodes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMQP_URL", "amqp://u:p@rabbit-0:5672,rabbit-1:5672,rabbit-2:5672/v")
    assert load_settings(ExampleSettings).amqp_url == "amqp://u:p@rabbit-0:5672,rabbit-1:5672,rabbit-2:5672/v"


def test_values_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRY_DELAYS_MS", "[100, 200]")
    monkeypatch.setenv("AMQP_URL", "amqp://u:p@broker:5672/v")
    settings = load_settings(ExampleSettings)
    assert settings.retry_delays_ms == (100, 200)
    assert settings.amqp_url == "amqp://u:p@broker:5672/v"


def test_the_database_pool_is_sized_by_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from mport_shared.messaging.tables import messaging_tables
    from mport_shared.service import ServiceRuntime
    from sqlalchemy import MetaData
    from sqlalchemy.pool import QueuePool

    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://nobody@127.0.0.1:1/none")
    monkeypatch.setenv("DATABASE_POOL_SIZE", "7")
    settings = load_settings(ExampleSettings)
    runtime = ServiceRuntime(name="x", settings=settings, tables=messaging_tables(MetaData()))
    pool = runtime.engine.sync_engine.pool
    assert isinstance(pool, QueuePool)
    assert pool.size() == 7
    # No overflow by default: a connection beyond the pool would be opened and closed per burst.
    assert pool._max_overflow == 0  # QueuePool has no public getter for it
