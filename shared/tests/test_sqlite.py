"""Every service's schema migrates on SQLite (the local default), and outbox/inbox work there."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mport_shared.db import create_engine, migrate, session_factory
from mport_shared.events import OrderSubmitted, envelop
from mport_shared.messaging.inbox import claim_message
from mport_shared.messaging.outbox import add_to_outbox
from sqlalchemy import inspect, select


@pytest.mark.parametrize(
    ("script", "tables_module"),
    [
        ("portal_api:migrations", "portal_api.models"),
        ("order_worker:migrations", "order_worker.models"),
        ("sms_worker:migrations", "sms_worker.models"),
        ("payroll_worker:migrations", "payroll_worker.models"),
    ],
)
async def test_migrations_create_the_models_tables_on_sqlite(
    tmp_path: Path, script: str, tables_module: str
) -> None:
    import importlib
    import uuid
    from datetime import UTC, datetime

    url = f"sqlite+aiosqlite:///{tmp_path / 'service.db'}"
    await migrate(script, url)
    module = importlib.import_module(tables_module)
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            names = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        assert set(module.Base.metadata.tables) <= names

        sessions = session_factory(engine)
        event = envelop(
            OrderSubmitted(order_id=uuid.uuid4(), carrier_order_id="c", submitted_at=datetime.now(UTC)),
            source="/t",
            correlation_id="c",
        )
        async with sessions.begin() as session:
            await add_to_outbox(session, module.tables.outbox, event)
            assert await claim_message(session, module.tables.inbox, consumer="t", message_id="m1")
            assert not await claim_message(session, module.tables.inbox, consumer="t", message_id="m1")
        async with sessions() as session:
            row = (await session.execute(select(module.tables.outbox))).one()
        assert row.message_id == event.id
        assert row.created_at.tzinfo is not None
    finally:
        await engine.dispose()


async def test_an_inline_engine_runs_on_the_event_loop_and_sessions_take_turns(tmp_path: Path) -> None:
    """make run's portal (DATABASE_SQLITE_INLINE): no aiosqlite thread, and one connection, so
    a session holding SQLite's write lock across an await makes the next writer wait for its
    turn on the loop instead of blocking the loop in SQLite's busy wait (which the holder needs
    to finish: "database is locked" after the busy timeout)."""
    import asyncio
    import threading

    from sqlalchemy import text

    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'inline.db'}", sqlite_inline=True)
    sessions = session_factory(engine)
    threads = threading.active_count()
    try:
        async with sessions.begin() as session:
            await session.execute(text("CREATE TABLE t (n INTEGER)"))
        assert threading.active_count() == threads, "a thread was started for the connection"
        committed: list[int] = []

        async def write(n: int, *, hold_s: float) -> None:
            async with sessions.begin() as session:
                await session.execute(text("INSERT INTO t (n) VALUES (:n)"), {"n": n})
                await asyncio.sleep(hold_s)  # the write lock held across an await
            committed.append(n)

        started = asyncio.get_running_loop().time()
        await asyncio.wait_for(
            asyncio.gather(write(1, hold_s=0.3), *(write(n, hold_s=0) for n in range(2, 6))), timeout=4
        )
        assert asyncio.get_running_loop().time() - started < 2
        assert committed[0] == 1, "the first writer's turn ends first"
        assert sorted(committed) == [1, 2, 3, 4, 5]
        async with sessions() as session:
            assert (await session.execute(text("SELECT count(*) FROM t"))).scalar_one() == 5
    finally:
        await engine.dispose()


async def test_on_sqlite_the_relay_holds_no_connection_while_the_broker_confirms(tmp_path: Path) -> None:
    """With the one connection of an inline engine, a relay that held it while waiting for the
    broker's confirms would hold up every request as long (a slow broker, or one away)."""
    import asyncio
    import uuid
    from datetime import UTC, datetime

    from mport_shared.messaging.outbox import OutboxRelay
    from sms_worker.models import tables
    from sqlalchemy import func

    class SlowBroker:
        def __init__(self) -> None:
            self.publishing = asyncio.Event()
            self.confirm = asyncio.Event()

        async def publish_many(self, messages: list[Any], *, now: datetime) -> list[BaseException | None]:
            self.publishing.set()
            await self.confirm.wait()
            return [None] * len(messages)

    url = f"sqlite+aiosqlite:///{tmp_path / 'service.db'}"
    await migrate("sms_worker:migrations", url)
    engine = create_engine(url, sqlite_inline=True)
    try:
        sessions = session_factory(engine)
        broker = SlowBroker()
        relay = OutboxRelay(service="t", sessions=sessions, outbox=tables.outbox, publisher=broker)  # type: ignore[arg-type]
        event = envelop(
            OrderSubmitted(order_id=uuid.uuid4(), carrier_order_id="c", submitted_at=datetime.now(UTC)),
            source="/t",
            correlation_id="c",
        )
        async with sessions.begin() as session:
            await add_to_outbox(session, tables.outbox, event)
        publishing = asyncio.create_task(relay.publish_pending())
        await asyncio.wait_for(broker.publishing.wait(), timeout=5)
        async with sessions() as session:  # another request, while the broker has not confirmed
            unsent = select(func.count()).select_from(tables.outbox).where(tables.outbox.c.sent_at.is_(None))
            assert await asyncio.wait_for(session.scalar(unsent), timeout=3) == 1
        broker.confirm.set()
        assert await asyncio.wait_for(publishing, timeout=5) == 1
        async with sessions() as session:
            assert await session.scalar(unsent) == 0, "the confirmed row is marked sent"
    finally:
        await engine.dispose()
