"""Every service's schema migrates on SQLite (the local default), and outbox/inbox work there."""

from __future__ import annotations

from pathlib import Path

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
