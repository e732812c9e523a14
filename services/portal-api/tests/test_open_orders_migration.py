"""On SQLite (the local default) too: the open-order indexes exist and refuse a second open order.
On SQLite and PostgreSQL: the migration that adds them upgrades a database that already holds
orders, duplicates and all."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from mport_shared.db import create_engine, migrate, session_factory
from mport_shared.testing import MakeDatabase
from portal_api.models import OPEN_ORDER_INDEXES, Base, Order, Subscription
from portal_api.seed import DEMO_COMPANY_ID, KARI, seed
from portal_api.unit_of_work import IdempotencyKeyTaken, PlaceTaken, conflict_of
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
    insert,
    inspect,
    select,
)
from sqlalchemy.exc import IntegrityError

SCRIPTS = "portal_api:migrations"
BEFORE = "5bed02115b19"  # the initial schema: no subscription_id, no open-order indexes


def _upgrade(url: str, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", SCRIPTS)
    config.set_main_option("sqlalchemy.url", url)
    config.attributes["configure_logger"] = False
    command.upgrade(config, revision)


def _order(subscription_id: uuid.UUID, product_code: str, kind: str, billing: str, status: str) -> Order:
    now = datetime.now(UTC)
    return Order(
        id=uuid.uuid4(),
        company_id=DEMO_COMPANY_ID,
        employee_id=KARI.id,
        subscription_id=subscription_id,
        idempotency_key=str(uuid.uuid4()),
        msisdn=KARI.msisdn,
        product_code=product_code,
        kind=kind,
        details={},
        status=status,
        employee_charge_ore=0,
        billing=billing,
        created_at=now,
        updated_at=now,
    )


async def test_the_open_order_indexes_exist_and_refuse_a_second_open_order(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'portal.db'}"
    await migrate(SCRIPTS, url)
    engine = create_engine(url)
    sessions = session_factory(engine)
    try:
        await seed(sessions)
        async with engine.connect() as conn:
            indexes = await conn.run_sync(lambda c: inspect(c).get_indexes("orders"))
        found = {i["name"]: i for i in indexes}
        for index in OPEN_ORDER_INDEXES:
            assert found[index.name]["unique"]
            assert found[index.name]["column_names"] == [c.name for c in index.columns]
        async with sessions() as session:
            subscription_id = await session.scalar(
                select(Subscription.id).where(Subscription.employee_id == KARI.id)
            )
        assert subscription_id is not None

        async def add(*orders: Order) -> IntegrityError | None:
            async with sessions() as session:
                session.add_all(orders)
                try:
                    await session.commit()
                except IntegrityError as error:
                    return error
            return None

        def sub(product: str, kind: str, billing: str, status: str) -> Order:
            return _order(subscription_id, product, kind, billing, status)

        # A monthly add-on: one open order, or one completed that is not ended.
        assert await add(sub("tvilling", "addon", "monthly", "received")) is None
        refused = await add(sub("tvilling", "addon", "monthly", "received"))
        assert refused is not None
        assert isinstance(conflict_of(refused), PlaceTaken)
        assert await add(sub("nettvern", "addon", "monthly", "completed")) is None
        assert await add(sub("nettvern", "addon", "monthly", "submitted")) is not None
        assert await add(sub("min-sky-50gb", "addon", "monthly", "failed")) is None
        assert await add(sub("min-sky-50gb", "addon", "monthly", "received")) is None
        ended = sub("min-sky-25gb", "addon", "monthly", "completed")
        ended.ended_at = datetime.now(UTC)
        assert await add(ended, sub("min-sky-25gb", "addon", "monthly", "received")) is None
        # A one-off top-up, again and again.
        assert await add(*(sub("ekstra-data-5gb", "addon", "one_off", "received") for _ in range(3))) is None
        # One open plan change, whichever plan.
        assert await add(sub("bedrift-total-e", "plan", "monthly", "submitted")) is None
        assert await add(sub("bedrift-total-d", "plan", "monthly", "received")) is not None
        assert await add(sub("bedrift-total-d", "plan", "monthly", "completed")) is None
        # One open SIM order and one open SIM activation.
        assert await add(sub("bestill-sim", "sim_order", "one_off", "received")) is None
        assert await add(sub("aktiver-nytt-sim", "sim_activation", "one_off", "received")) is None
        assert await add(sub("bestill-sim", "sim_order", "one_off", "submitted")) is not None
        assert await add(sub("aktiver-nytt-sim", "sim_activation", "one_off", "received")) is not None

        # The repeated-key constraint is not mistaken for an open-order index.
        first = sub("ekstra-data-1gb", "addon", "one_off", "received")
        again = sub("ekstra-data-1gb", "addon", "one_off", "received")
        again.idempotency_key = first.idempotency_key
        assert await add(first) is None
        same_key = await add(again)
        assert same_key is not None
        assert isinstance(conflict_of(same_key), IdempotencyKeyTaken)
    finally:
        await engine.dispose()


# The tables as the initial schema (BEFORE) has them, for writing rows as that version wrote them.
_old = MetaData()
_companies = Table("companies", _old, Column("id", Uuid), Column("name", String))
_products = Table(
    "products",
    _old,
    *(Column(c, String) for c in ("code", "name", "kind", "category", "carrier_code", "billing")),
    Column("price_ore", Integer),
    Column("sort_order", Integer),
)
_employees = Table(
    "employees",
    _old,
    Column("id", Uuid),
    Column("company_id", Uuid),
    *(Column(c, String) for c in ("email", "name", "employee_number")),
    Column("is_admin", Boolean),
    Column("self_service_active", Boolean),
)
_subscriptions = Table(
    "subscriptions", _old, Column("id", Uuid), Column("employee_id", Uuid), Column("msisdn", String),
    Column("plan_code", String),
)  # fmt: skip
_orders = Table(
    "orders",
    _old,
    *(Column(c, Uuid) for c in ("id", "company_id", "employee_id")),
    *(Column(c, String) for c in ("idempotency_key", "msisdn", "product_code", "kind", "status", "billing")),
    Column("details", JSON),
    Column("failure_reason", String),
    Column("employee_charge_ore", Integer),
    Column("created_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True)),
)
_active_services = Table(
    "active_services", _old, Column("subscription_id", Uuid), Column("product_code", String),
    Column("order_id", Uuid),
)  # fmt: skip


async def test_the_migration_upgrades_a_sqlite_database_with_orders_and_resolves_what_the_indexes_refuse(
    tmp_path: Path,
) -> None:
    await upgrade_with_existing_orders(f"sqlite+aiosqlite:///{tmp_path / 'portal-api.db'}")


@pytest.mark.integration
async def test_the_migration_upgrades_a_postgresql_database_with_orders_and_resolves_what_the_indexes_refuse(
    make_database: MakeDatabase,
) -> None:
    await upgrade_with_existing_orders(await make_database(None))


async def upgrade_with_existing_orders(url: str) -> None:
    """Upgrade a database at the initial schema holding orders, some of which the new indexes
    refuse, and check what became of them."""
    await asyncio.to_thread(_upgrade, url, BEFORE)

    # What `make run` may have left behind, written as the previous version's code wrote it.
    employee, subscription, company = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    start = datetime(2026, 11, 1, 12, tzinfo=UTC)
    orders: dict[str, uuid.UUID] = {}

    def order_row(
        name: str, product: str, kind: str, billing: str, status: str, minutes: int
    ) -> dict[str, Any]:
        orders[name] = uuid.uuid4()
        at = start + timedelta(minutes=minutes)
        return {
            "id": orders[name], "company_id": company, "employee_id": employee, "idempotency_key": name,
            "msisdn": "4791234567", "product_code": product, "kind": kind, "details": {}, "status": status,
            "failure_reason": "Carrier rejected the order" if status == "failed" else None,
            "employee_charge_ore": 0, "billing": billing, "created_at": at, "updated_at": at,
        }  # fmt: skip

    rows = [
        # Three Tvilling orders let through by the old read-then-insert race; the second activated it.
        order_row("tvilling-1", "tvilling", "addon", "monthly", "completed", 1),
        order_row("tvilling-2", "tvilling", "addon", "monthly", "completed", 2),
        order_row("tvilling-3", "tvilling", "addon", "monthly", "received", 3),
        # Two open plan changes to different plans (the old check was per plan).
        order_row("plan-e", "bedrift-total-e", "plan", "monthly", "submitted", 4),
        order_row("plan-d", "bedrift-total-d", "plan", "monthly", "received", 5),
        # Nothing wrong with these.
        order_row("nettvern", "nettvern", "addon", "monthly", "completed", 6),
        order_row("extra-1", "ekstra-data-5gb", "addon", "one_off", "completed", 7),
        order_row("extra-2", "ekstra-data-5gb", "addon", "one_off", "received", 8),
        order_row("rejected", "min-sky-50gb", "addon", "monthly", "failed", 9),
    ]
    products = [
        ("tvilling", "addon"), ("nettvern", "addon"), ("ekstra-data-5gb", "addon"), ("min-sky-50gb", "addon"),
        ("bedrift-total-c", "plan"), ("bedrift-total-d", "plan"), ("bedrift-total-e", "plan"),
    ]  # fmt: skip
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(_companies).values(id=company, name="Old AS"))
            await conn.execute(
                insert(_products),
                [
                    {"code": c, "name": c, "kind": k, "category": "x", "carrier_code": c,
                     "billing": "monthly", "price_ore": 100, "sort_order": 0}
                    for c, k in products
                ],
            )  # fmt: skip
            await conn.execute(
                insert(_employees).values(
                    id=employee, company_id=company, email="old@example.no", name="Old", employee_number="9",
                    is_admin=False, self_service_active=True,
                )
            )  # fmt: skip
            await conn.execute(
                insert(_subscriptions).values(
                    id=subscription, employee_id=employee, msisdn="4791234567", plan_code="bedrift-total-c"
                )
            )
            await conn.execute(insert(_orders), rows)
            await conn.execute(
                insert(_active_services).values(
                    subscription_id=subscription, product_code="tvilling", order_id=orders["tvilling-2"]
                )
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
        async with session_factory(engine)() as session:
            stored = {o.idempotency_key: o for o in (await session.scalars(select(Order))).all()}
    finally:
        await engine.dispose()

    assert {o.subscription_id for o in stored.values()} == {subscription}
    holding = {k for k, o in stored.items() if o.ended_at is None and o.status != "failed"}
    assert holding == {"tvilling-2", "plan-d", "nettvern", "extra-1", "extra-2"}
    assert stored["tvilling-1"].ended_at is not None
    assert stored["tvilling-1"].status == "completed"
    assert stored["tvilling-3"].ended_at is not None
    assert stored["tvilling-3"].status == "received"  # still on its way; it just holds no place
    assert stored["plan-e"].status == "failed"
    assert "only one may be open at a time" in (stored["plan-e"].failure_reason or "")
    assert stored["rejected"].failure_code == "carrier_rejected"
    assert stored["rejected"].failure_reason == "Carrier rejected the order"
