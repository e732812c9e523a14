"""The main SIM is marked in data: migration c2e7a91d4f60 marks the SIM the page showed as main on
a database that has SIM cards already (SQLite, the local default, and PostgreSQL), and the
database keeps it to one per subscription."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from mport_shared.db import create_engine, migrate, session_factory
from mport_shared.testing import MakeDatabase
from portal_api.models import Base, SimCard
from sqlalchemy import Boolean, Column, DateTime, Integer, MetaData, String, Table, Uuid, insert, select
from sqlalchemy.exc import IntegrityError

SCRIPTS = "portal_api:migrations"
BEFORE = "73803c7ae579"  # the revision before: SIM cards without is_main

_old = MetaData()
_companies = Table("companies", _old, Column("id", Uuid), Column("name", String))
_employees = Table(
    "employees", _old, Column("id", Uuid), Column("company_id", Uuid),
    *(Column(c, String) for c in ("email", "name", "employee_number")),
    Column("is_admin", Boolean), Column("self_service_active", Boolean),
)  # fmt: skip
_products = Table(
    "products", _old,
    *(Column(c, String) for c in ("code", "name", "kind", "category", "carrier_code", "billing")),
    Column("price_ore", Integer), Column("sort_order", Integer),
)  # fmt: skip
_subscriptions = Table(
    "subscriptions", _old, Column("id", Uuid), Column("employee_id", Uuid), Column("msisdn", String),
    Column("plan_code", String),
)  # fmt: skip
_sim_cards = Table(
    "sim_cards", _old, Column("id", Uuid), Column("subscription_id", Uuid), Column("label", String),
    Column("icc", String), Column("status", String), Column("created_at", DateTime(timezone=True)),
)  # fmt: skip


def _upgrade(url: str, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", SCRIPTS)
    config.set_main_option("sqlalchemy.url", url)
    config.attributes["configure_logger"] = False
    command.upgrade(config, revision)


async def test_the_migration_marks_the_main_sim_on_sqlite(tmp_path: Path) -> None:
    await upgrade_with_sim_cards(f"sqlite+aiosqlite:///{tmp_path / 'portal-api.db'}")


@pytest.mark.integration
async def test_the_migration_marks_the_main_sim_on_postgresql(make_database: MakeDatabase) -> None:
    await upgrade_with_sim_cards(await make_database(None))


async def upgrade_with_sim_cards(url: str) -> None:
    await asyncio.to_thread(_upgrade, url, BEFORE)
    company, start = uuid.uuid4(), datetime(2026, 11, 1, 12, tzinfo=UTC)
    sims: dict[str, uuid.UUID] = {}
    subscriptions: dict[str, uuid.UUID] = {}

    def sim(subscription: str, name: str, label: str, minutes: int) -> dict[str, object]:
        sims[name] = uuid.uuid4()
        return {
            "id": sims[name], "subscription_id": subscriptions[subscription], "label": label, "icc": None,
            "status": "active", "created_at": start + timedelta(minutes=minutes),
        }  # fmt: skip

    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(_companies).values(id=company, name="Old AS"))
            await conn.execute(
                insert(_products).values(
                    code="bedrift-total-c", name="C", kind="plan", category="plan", carrier_code="C",
                    billing="monthly", price_ore=1, sort_order=0,
                )
            )  # fmt: skip
            for n, who in enumerate(("labelled", "unlabelled", "none")):
                employee, subscriptions[who] = uuid.uuid4(), uuid.uuid4()
                await conn.execute(
                    insert(_employees).values(
                        id=employee, company_id=company, email=f"{who}@example.no", name=who,
                        employee_number=str(n), is_admin=False, self_service_active=True,
                    )
                )  # fmt: skip
                await conn.execute(
                    insert(_subscriptions).values(
                        id=subscriptions[who], employee_id=employee, msisdn=f"479000000{n}",
                        plan_code="bedrift-total-c",
                    )
                )  # fmt: skip
            await conn.execute(
                insert(_sim_cards),
                [
                    # A shipped SIM came first; the main one is the one labelled so.
                    sim("labelled", "shipped", "Nytt SIM (sendt)", 1),
                    sim("labelled", "main", "Sim hovedkort", 2),
                    sim("labelled", "second main label", "Sim hovedkort", 3),
                    # No label says so: the page showed the earliest as the main SIM.
                    sim("unlabelled", "earliest", "Jobbmobil", 1),
                    sim("unlabelled", "later", "Reserve", 2),
                ],
            )
    finally:
        await engine.dispose()

    await migrate(SCRIPTS, url)

    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            differences = await conn.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata)
            )
        assert differences == []  # the migrated schema is the models' schema
        sessions = session_factory(engine)
        async with sessions() as session:
            marked = {card.id for card in (await session.scalars(select(SimCard))).all() if card.is_main}
        assert marked == {sims["main"], sims["earliest"]}

        async with sessions() as session:
            session.add(
                SimCard(
                    subscription_id=subscriptions["labelled"], label="Another", is_main=True, status="active"
                )
            )
            with pytest.raises(IntegrityError):  # one main SIM per subscription
                await session.commit()
    finally:
        await engine.dispose()
