"""The one-statement unit of work that places orders, on SQLite and PostgreSQL: it writes the new
orders (with their consents) and their events at commit, and refuses any other write before it
is made, since on PostgreSQL no transaction would hold that write together with the rest."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from mport_shared.db import migrate
from mport_shared.events import Billing, Envelope, EventPayload, OrderPlaced, envelop
from mport_shared.testing import MakeDatabase
from portal_api.models import Company, Consent, Order, Subscription, tables
from portal_api.orders.domain import OrderStatus
from portal_api.seed import DEMO_COMPANY_ID, KARI
from portal_api.unit_of_work import SqlUnitsOfWork, UnitOfWork
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .conftest import seeded, snapshot

SCRIPTS = "portal_api:migrations"
NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
async def sessions(
    request: pytest.FixtureRequest, tmp_path: Path, make_database: MakeDatabase
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'portal-api.db'}"
        await migrate(SCRIPTS, url)
    else:
        url = await make_database(SCRIPTS)
    async with seeded(url) as factory:
        yield factory


async def kari_subscription(sessions: async_sessionmaker[AsyncSession]) -> uuid.UUID:
    async with sessions() as session:
        found = await session.scalar(select(Subscription.id).where(Subscription.employee_id == KARI.id))
    assert found is not None
    return found


def new_order(subscription_id: uuid.UUID, *, consent: bool) -> Order:
    order = Order(
        id=uuid.uuid4(), company_id=DEMO_COMPANY_ID, employee_id=KARI.id, subscription_id=subscription_id,
        idempotency_key=str(uuid.uuid4()), msisdn=KARI.msisdn, product_code="ekstra-data-1gb", kind="addon",
        details={}, status=OrderStatus.RECEIVED.value, employee_charge_ore=2900,
        billing=Billing.ONE_OFF.value, created_at=NOW, updated_at=NOW, action="add",
        product_name="Ekstra Data 1 GB",
    )  # fmt: skip
    if consent:
        order.consent = Consent(
            id=uuid.uuid4(), company_id=DEMO_COMPANY_ID, employee_id=KARI.id, accepted_at=NOW,
            amount_ore=2900, billing=Billing.ONE_OFF.value, text="Dette medfører lønnstrekk: 29,00 kr.",
        )  # fmt: skip
        order.consent_id = order.consent.id
    return order


def placed(order: Order) -> Envelope[EventPayload]:
    return envelop(
        OrderPlaced(
            order=snapshot(
                {
                    "id": str(order.id), "msisdn": order.msisdn, "product_code": order.product_code,
                    "carrier_product_code": "Surf-1GB", "kind": order.kind,
                    "employee_charge_ore": order.employee_charge_ore, "billing": order.billing,
                }
            )
        ),
        source="/test",
        correlation_id=str(order.id),
    )  # fmt: skip


def stage(uow: UnitOfWork, subscription_id: uuid.UUID, *, consent: bool) -> None:
    """Add an order, with its consent or without, and publish its OrderPlaced."""
    order = new_order(subscription_id, consent=consent)
    uow.orders.add(order)
    uow.messages.publish(placed(order))


async def counts(sessions: async_sessionmaker[AsyncSession]) -> tuple[int, int, int]:
    """How many orders, consents and outbox rows are stored."""
    async with sessions() as session:
        return tuple(  # type: ignore[return-value]
            [
                int(await session.scalar(select(func.count()).select_from(table)) or 0)
                for table in (Order.__table__, Consent.__table__, tables.outbox)
            ]
        )


async def test_the_orders_consents_and_events_it_adds_are_written_at_commit(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    units, subscription_id = SqlUnitsOfWork(sessions), await kari_subscription(sessions)
    async with sessions() as session, units.on(session, one_statement=True) as uow:
        stage(uow, subscription_id, consent=True)
        stage(uow, subscription_id, consent=False)
        await uow.commit()
    assert await counts(sessions) == (2, 1, 2)


async def test_what_it_adds_is_dropped_when_it_ends_without_a_commit(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    units, subscription_id = SqlUnitsOfWork(sessions), await kari_subscription(sessions)
    async with sessions() as session:
        async with units.on(session, one_statement=True) as uow:
            stage(uow, subscription_id, consent=True)
        await session.commit()
    assert await counts(sessions) == (0, 0, 0)


async def test_any_other_write_is_refused_before_it_is_made(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    units, subscription_id = SqlUnitsOfWork(sessions), await kari_subscription(sessions)
    async with sessions() as session:
        async with units.on(session, one_statement=True) as uow:
            with pytest.raises(RuntimeError, match="one-statement"):
                await uow.messages.claim("a-message")  # a write of its own statement
            session.add(Company(name="Ny AS"))  # a write the ORM would flush
            uow.orders.add(new_order(subscription_id, consent=False))
            with pytest.raises(RuntimeError, match="one-statement"):
                await uow.commit()
        await session.commit()
        companies = await session.scalar(
            select(func.count()).select_from(Company).where(Company.name == "Ny AS")
        )
    assert companies == 0
    assert await counts(sessions) == (0, 0, 0)
