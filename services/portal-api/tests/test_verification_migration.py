"""The verifications migration (7d3f5a9c2e18) makes the models' schema, on PostgreSQL and SQLite,
and its one-pending-code index refuses a second pending code for an employee."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from mport_shared.db import create_engine, migrate, session_factory
from mport_shared.testing import MakeDatabase
from portal_api.models import Base, Verification
from portal_api.seed import DEMO_COMPANY_ID, HAKON, seed
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

SCRIPTS = "portal_api:migrations"


async def _check(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            differences = await conn.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata)
            )
        assert differences == []  # the migrated schema is the models' schema
        await seed(session_factory(engine))
        now = datetime.now(UTC)
        row = {
            "employee_id": HAKON.id,
            "company_id": DEMO_COMPANY_ID,
            "msisdn": HAKON.msisdn,
            "code_hmac": b"\0" * 32,
            "created_at": now,
            "expires_at": now + timedelta(minutes=10),
            "attempts": 0,
            "delivery_status": "requested",
        }
        async with engine.begin() as conn:
            await conn.execute(insert(Verification).values(id=uuid.uuid4(), state="replaced", **row))
            await conn.execute(insert(Verification).values(id=uuid.uuid4(), state="pending", **row))
        with pytest.raises(IntegrityError, match=r"uq_verifications_pending|verifications\.employee_id"):
            async with engine.begin() as conn:
                await conn.execute(insert(Verification).values(id=uuid.uuid4(), state="pending", **row))
    finally:
        await engine.dispose()


async def test_on_postgresql(make_database: MakeDatabase) -> None:
    await _check(await make_database(SCRIPTS))


async def test_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'portal.db'}"
    await migrate(SCRIPTS, url)
    await _check(url)
