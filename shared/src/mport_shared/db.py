"""Database plumbing shared by the services: engines for SQLite and PostgreSQL, and migrations."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import DateTime, Dialect, TypeDecorator, event, inspect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Mapper
from sqlalchemy.pool import ConnectionPoolEntry


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, *, pool_size: int = 20, max_overflow: int = 0) -> AsyncEngine:
    """An async engine; SQLite gets WAL and a busy timeout so a worker and its relay can share it."""
    if is_sqlite(url):
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    # No pool_pre_ping: with asyncpg it costs three round trips (BEGIN, ";", ROLLBACK) on every
    # checkout, which was a third of the round trips of placing an order. A connection the server
    # has closed (restart, failover, idle kill) is noticed by asyncpg as soon as the socket
    # closes, so checking that is free; such a connection is replaced before anyone uses it.
    engine = create_async_engine(url, pool_size=pool_size, max_overflow=max_overflow)

    @event.listens_for(engine.sync_engine, "checkout")
    def _replace_closed(_dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        driver = record.driver_connection
        if driver is None or driver.is_closed():
            raise DisconnectionError("the database closed this pooled connection")

    return engine


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def _alembic_config(script_location: str, url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", script_location)
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["configure_logger"] = False
    return config


def migrate_sync(script_location: str, url: str) -> None:
    """Upgrade a service's database to the newest revision (runs its own event loop)."""
    command.upgrade(_alembic_config(script_location, url), "head")


async def migrate(script_location: str, url: str) -> None:
    # Alembic's async env starts its own loop, so it must run outside ours.
    await asyncio.to_thread(migrate_sync, script_location, url)


async def insert_if_absent(
    session: AsyncSession, target: Any, values: dict[str, Any], *, keys: list[str]
) -> bool:
    """INSERT … ON CONFLICT DO NOTHING on SQLite and PostgreSQL; True if a row was inserted.

    Concurrent inserts of the same key are safe: the loser waits for the winner, then does nothing."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    mapper = inspect(target, raiseerr=False)
    if isinstance(mapper, Mapper):
        # Insert into the mapped class's table: an ORM-enabled INSERT runs the same SQL through
        # the ORM's bulk machinery, measurably slower on the hot paths. It also flushed first,
        # so do that here, for changes the caller made before.
        if session.new or session.dirty or session.deleted:
            await session.flush()
        target = mapper.local_table
    result = await session.execute(
        insert(target).values(**values).on_conflict_do_nothing(index_elements=keys)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def new_revision(script_location: str, url: str, message: str) -> None:
    """Autogenerate a migration from the difference between the models and a migrated database."""
    config = _alembic_config(script_location, url)
    command.upgrade(config, "head")
    command.revision(config, message=message, autogenerate=True)


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every database (SQLite forgets the zone; this restores it)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime: store times in UTC with a timezone")
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value
