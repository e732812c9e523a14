"""The SQL repositories say what the domain's rules say, so that the fake unit of work the unit
tests use (tests/fakes.py) is a faithful stand-in: what holds a place, and how a status event
moves an order, asked of SQLite and PostgreSQL for every kind of order in every state."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from mport_shared.db import migrate
from mport_shared.testing import MakeDatabase
from portal_api.catalog.products import CATALOG, Catalog
from portal_api.models import Employee, Order, Subscription
from portal_api.orders.domain import OrderStatus, StatusChange, holds_the_place, takes_a_place
from portal_api.seed import DEMO_COMPANY_ID
from portal_api.unit_of_work import SqlAlchemyUnitOfWork, SqlUnitsOfWork
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .conftest import seeded

SCRIPTS = "portal_api:migrations"
NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)
CATALOG_ = Catalog(CATALOG)
ORDERED = ("tvilling", "ekstra-data-1gb", "bedrift-total-d", "bestill-sim", "aktiver-nytt-sim")
STATES = list(itertools.product(ORDERED, [s.value for s in OrderStatus], (False, True)))


async def _sqlite(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'portal-api.db'}"
    await migrate(SCRIPTS, url)
    return url


async def _one_order_each(sessions: async_sessionmaker[AsyncSession]) -> list[Order]:
    """One order in each state, each on a subscription of its own (the indexes allow no more)."""
    orders = []
    async with sessions.begin() as session:
        for n, (code, status, ended) in enumerate(STATES):
            product = CATALOG_.by_code[code]
            person = Employee(
                company_id=DEMO_COMPANY_ID, email=f"p{n}@example.no", name=f"P {n}",
                employee_number=f"9{n:03}", self_service_active=True,
            )  # fmt: skip
            session.add(person)
            await session.flush()
            subscription = Subscription(
                employee_id=person.id, msisdn=f"4799{n:06}", plan_code="bedrift-total-c"
            )
            session.add(subscription)
            await session.flush()
            order = Order(
                id=uuid.uuid4(), company_id=DEMO_COMPANY_ID, employee_id=person.id,
                subscription_id=subscription.id, idempotency_key=str(n), msisdn=subscription.msisdn,
                product_code=code, kind=product.kind.value, details={}, status=status,
                employee_charge_ore=0, billing=product.billing.value, created_at=NOW, updated_at=NOW,
                ended_at=NOW if ended else None, carrier_state_at=NOW if n % 3 else None,
            )  # fmt: skip
            session.add(order)
            orders.append(order)
    return orders


def _uow(session: AsyncSession, sessions: async_sessionmaker[AsyncSession]) -> SqlAlchemyUnitOfWork:
    return SqlUnitsOfWork(sessions).on(session)


async def test_sqlite_and_the_domain_agree_on_what_holds_a_place(tmp_path: Path) -> None:
    async with seeded(await _sqlite(tmp_path)) as sessions:
        await agree_on_what_holds_a_place(sessions)


@pytest.mark.integration
async def test_postgresql_and_the_domain_agree_on_what_holds_a_place(make_database: MakeDatabase) -> None:
    async with seeded(await make_database(SCRIPTS)) as sessions:
        await agree_on_what_holds_a_place(sessions)


async def test_sqlite_and_the_domain_agree_on_what_a_status_change_applies_to(tmp_path: Path) -> None:
    async with seeded(await _sqlite(tmp_path)) as sessions:
        await agree_on_status_changes(sessions)


@pytest.mark.integration
async def test_postgresql_and_the_domain_agree_on_what_a_status_change_applies_to(
    make_database: MakeDatabase,
) -> None:
    async with seeded(await make_database(SCRIPTS)) as sessions:
        await agree_on_status_changes(sessions)


async def agree_on_what_holds_a_place(sessions: async_sessionmaker[AsyncSession]) -> None:
    orders = await _one_order_each(sessions)
    async with sessions() as session:
        uow = _uow(session, sessions)
        for order, product in itertools.product(orders, CATALOG_.products):
            held = await uow.orders.holding_place(order.subscription_id, product)
            expected = takes_a_place(product) and holds_the_place(order, product)
            assert (held is not None) == expected, (
                order.product_code,
                order.status,
                order.ended_at,
                product.code,
            )


async def agree_on_status_changes(sessions: async_sessionmaker[AsyncSession]) -> None:
    orders = await _one_order_each(sessions)
    news_at = [None, NOW - timedelta(hours=1), NOW + timedelta(hours=1)]
    for target, (order, at) in itertools.product(list(OrderStatus), itertools.product(orders, news_at)):
        change = StatusChange(
            order_id=order.id,
            to=target,
            allowed_from=(OrderStatus.RECEIVED, OrderStatus.SUBMITTED),
            carrier_news_at=at,
            values={"carrier_state_at": NOW},
        )
        async with sessions() as session:
            stored = await session.get(Order, order.id)
            assert stored is not None
            expected = change.applies_to(stored.status, stored.carrier_state_at)
            changed = await _uow(session, sessions).orders.change_status(change)
            await session.rollback()  # each change is tried on the order as it was
        assert (changed is not None) == expected, (order.status, order.carrier_state_at, at, target)
