"""Database plumbing shared by the services: engines for SQLite and PostgreSQL, and migrations."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aiosqlite
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
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry

# How long a statement waits for another process's write lock on the same SQLite file (a CLI
# closing a pay period beside the running worker) before it fails with "database is locked".
SQLITE_BUSY_TIMEOUT_S = 30.0
# The same wait for a connection that runs on the event loop (inline_sqlite): the loop waits
# with it, so it is shorter; other processes' transactions on a service's file take milliseconds.
SQLITE_INLINE_BUSY_TIMEOUT_S = 5.0


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(
    url: str, *, pool_size: int = 20, max_overflow: int = 0, sqlite_inline: bool = False
) -> AsyncEngine:
    """An async engine; SQLite gets WAL and a busy timeout so a worker and its relay can share it.

    `sqlite_inline` (SQLite only): one connection, whose statements run on the event loop rather
    than on aiosqlite's thread; see InlineSqlite. Without it, a pool of aiosqlite connections,
    each with a thread of its own."""
    if is_sqlite(url):
        if sqlite_inline:
            path = make_url(url).database or ":memory:"
            engine = create_async_engine(
                url,
                async_creator=lambda: InlineSqlite.open(path, busy_timeout_s=SQLITE_INLINE_BUSY_TIMEOUT_S),
                # One connection: a session waits (on the event loop, as for any pool) for the one
                # before it to end, so two never contend for SQLite's write lock, whose wait would
                # block the loop that the holder needs to finish.
                poolclass=AsyncAdaptedQueuePool,
                pool_size=1,
                max_overflow=0,
            )
            busy_timeout_ms = int(SQLITE_INLINE_BUSY_TIMEOUT_S * 1000)
        else:
            engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
            busy_timeout_ms = int(SQLITE_BUSY_TIMEOUT_S * 1000)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
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


class _RunAtOnce:
    """Stands in for aiosqlite's queue to its thread: runs each call as it is queued."""

    def put_nowait(self, item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except Exception as error:
            if future is not None:
                future.set_exception(error)
        else:
            if future is not None:
                future.set_result(result)


class InlineSqlite(aiosqlite.Connection):
    """An aiosqlite connection that runs each call at once, on the event loop's thread.

    aiosqlite hands every call (cursor, execute, fetch, commit) to a thread of the connection's
    and back. On SQLite on a local disk a statement takes microseconds and the hand-offs cost more
    than the work: placing an order makes about fifteen of them, each a thread wake-up and a
    contended GIL, and under `make bench`'s intake load they were about half of the portal's CPU
    per order (5.5 ms on aiosqlite's threads, 3.1 ms inline). Running inline blocks the loop for
    as long as a statement takes, which is why it suits a service whose queries are all short
    (each service's are, by index), and why the engine keeps one such connection
    (create_engine(sqlite_inline=True)): a wait for SQLite's write lock blocks the loop."""

    def __init__(self, connector: Callable[[], sqlite3.Connection]) -> None:
        super().__init__(connector, iter_chunk_size=64)
        # SQLAlchemy's adapter also queues work on `_tx` itself (its isolation level setter).
        self._tx = _RunAtOnce()  # type: ignore[assignment]

    @classmethod
    async def open(cls, path: str, *, busy_timeout_s: float) -> InlineSqlite:
        def connect() -> sqlite3.Connection:
            # Not bound to the thread that opened it: the engine may be disposed from another
            # loop's thread (the test fixtures, Alembic); it is only ever used by one at a time.
            return sqlite3.connect(path, timeout=busy_timeout_s, check_same_thread=False)

        connection: InlineSqlite = await cls(connect)
        return connection

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)

    def __await__(self) -> Any:
        return self._connect().__await__()  # no thread to start


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
