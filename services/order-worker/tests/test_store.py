"""The provisioning store on PostgreSQL: one change wins when two act on an order at once, and a
due order is leased to one worker at a time."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from mport_shared.db import create_engine, session_factory
from mport_shared.events import OrderKind, OrderSnapshot
from mport_shared.testing import MakeDatabase
from order_worker.adapters.carrier import CarrierOrder, CarrierOrderState
from order_worker.domain import Provisioning, Schedule, Seen, Unavailable
from order_worker.models import tables
from order_worker.store import ProvisioningStore
from sqlalchemy import func, select

from .conftest import snapshot

pytestmark = pytest.mark.integration

SCHEDULE = Schedule(deadlines_s={kind: 86_400.0 for kind in OrderKind}, jitter=0.0)
TRACE = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
async def store(make_database: MakeDatabase) -> AsyncIterator[ProvisioningStore]:
    engine = create_engine(await make_database("order_worker:migrations"))
    yield ProvisioningStore(session_factory(engine))
    await engine.dispose()


def seen(state: CarrierOrderState) -> Seen:
    return Seen(CarrierOrder(id="c-1", external_id="x", state=state, failure_reason=None))


async def submitted_order(store: ProvisioningStore) -> str:
    provisioning = Provisioning.start(snapshot(), SCHEDULE)
    provisioning.observe(
        seen(CarrierOrderState.ACKNOWLEDGED),
        now=datetime.now(UTC),
        schedule=SCHEDULE,
        rng=random.Random(),
        scheduled=True,
    )
    assert await store.add(provisioning, traceparent=TRACE)
    return str(provisioning.order.order_id)


async def outbox_types(store: ProvisioningStore) -> list[str]:
    async with store.sessions() as session:
        rows = await session.scalars(select(tables.outbox.c.routing_key).order_by(tables.outbox.c.id))
        return list(rows.all())


async def test_two_changes_to_one_order_at_once_record_one_outcome(store: ProvisioningStore) -> None:
    order_id = await submitted_order(store)
    # A notification and a due check (or two workers) read the order at the same time …
    first, second = await store.get(order_id), await store.get(order_id)
    assert first is not None
    assert second is not None
    now = datetime.now(UTC)
    for stored in (first, second):
        stored.provisioning.observe(
            seen(CarrierOrderState.COMPLETED),
            now=now,
            schedule=SCHEDULE,
            rng=random.Random(),
            scheduled=False,
        )
    # … and both try to record that it completed: one wins, the other writes nothing.
    saved = await asyncio.gather(store.save(first), store.save(second))
    assert sorted(saved) == [False, True]
    assert await outbox_types(store) == ["mport.order.submitted.v1", "mport.order.completed.v1"]


async def test_a_due_order_is_leased_to_one_worker_at_a_time(store: ProvisioningStore) -> None:
    order_ids = [await submitted_order(store) for _ in range(20)]
    later = datetime.now(UTC) + timedelta(hours=2)  # every order's check is due by then
    claims = await asyncio.gather(
        *(store.claim_due(owner=f"w{n}", now=later, limit=8, lease_s=60) for n in range(4))
    )
    leased = [s.provisioning.order.order_id for claim in claims for s in claim]
    assert len(leased) == len(set(leased)) == 20
    assert {str(o) for o in leased} == set(order_ids)
    # Leased means taken until the lease runs out, or is released with a change.
    assert await store.claim_due(owner="w9", now=later, limit=50, lease_s=60) == []
    assert (
        len(await store.claim_due(owner="w9", now=later + timedelta(seconds=61), limit=50, lease_s=60)) == 20
    )


async def test_a_released_lease_without_a_change_comes_due_again(store: ProvisioningStore) -> None:
    await submitted_order(store)
    later = datetime.now(UTC) + timedelta(hours=2)
    [stored] = await store.claim_due(owner="w1", now=later, limit=5, lease_s=60)
    stored.provisioning.observe(
        Unavailable("503"), now=later, schedule=SCHEDULE, rng=random.Random(), scheduled=True
    )
    assert await store.save(stored)
    async with store.sessions() as session:
        count = await session.scalar(select(func.count()).select_from(tables.outbox))
    assert count == 1  # the outage added no event
    assert len(await store.claim_due(owner="w2", now=later + timedelta(hours=1), limit=5, lease_s=60)) == 1


async def test_the_same_order_added_twice_is_recorded_once_with_its_events_once(
    store: ProvisioningStore,
) -> None:
    order = snapshot()
    now = datetime.now(UTC)
    outcomes = []
    for _ in range(2):  # a redelivered OrderPlaced, or the same order under a new message id
        provisioning = Provisioning.start(order, SCHEDULE)
        provisioning.observe(
            seen(CarrierOrderState.COMPLETED), now=now, schedule=SCHEDULE, rng=random.Random(), scheduled=True
        )
        outcomes.append(await store.add(provisioning, traceparent=TRACE))
    assert outcomes == [True, False]
    assert await outbox_types(store) == ["mport.order.completed.v1"]


async def test_orders_added_at_once_share_a_transaction_and_a_duplicate_among_them_counts_once(
    store: ProvisioningStore,
) -> None:
    now = datetime.now(UTC)
    orders = [snapshot() for _ in range(5)]

    def completed(order: OrderSnapshot) -> Provisioning:
        provisioning = Provisioning.start(order, SCHEDULE)
        provisioning.observe(
            seen(CarrierOrderState.COMPLETED), now=now, schedule=SCHEDULE, rng=random.Random(), scheduled=True
        )
        return provisioning

    batch = [completed(order) for order in orders] + [completed(orders[0])]
    added = await asyncio.gather(*(store.add(p, traceparent=TRACE) for p in batch))
    assert added == [True] * 5 + [False]
    assert await outbox_types(store) == ["mport.order.completed.v1"] * 5
    assert [await store.exists(str(o.order_id)) for o in orders] == [True] * 5
    assert not await store.exists(str(uuid.uuid4()))
