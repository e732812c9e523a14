"""Order status events from RabbitMQ move orders forward only, once, whatever their order."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from mport_shared.db import create_engine
from mport_shared.events import (
    Envelope,
    OrderCompleted,
    OrderFailed,
    OrderFailureCode,
    OrderProgressed,
    OrderSubmitted,
)
from mport_shared.testing import wait_for
from portal_api.models import tables
from sqlalchemy import select

from .conftest import Portal, place_order, publish, sign_in, snapshot, worker_event

pytestmark = pytest.mark.integration


async def place(client: httpx.AsyncClient, product_code: str) -> dict[str, Any]:
    return await place_order(client, await sign_in(client, "kari.nordmann@demo.no"), product_code)


async def wait_status(client: httpx.AsyncClient, order_id: str, status: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def reached() -> bool:
        seen.update((await client.get(f"/api/v1/orders/{order_id}")).json())
        return seen.get("status") == status

    await wait_for(reached, timeout_s=10, what=f"order {order_id} to be {status}")
    return seen


async def test_a_late_submitted_after_completed_changes_nothing_and_a_duplicate_has_no_effect(
    portal: Portal,
) -> None:
    async with portal.client() as client:
        order = await place(client, "nettvern")
        now = datetime.now(UTC)
        completed = worker_event(
            OrderCompleted(order=snapshot(order), carrier_order_id="carrier-1", completed_at=now)
        )
        await publish(portal.amqp_url, completed)
        await wait_status(client, order["id"], "completed")
        late = worker_event(
            OrderSubmitted(order_id=uuid.UUID(order["id"]), carrier_order_id="late", submitted_at=now)
        )
        failed = worker_event(
            OrderFailed(order=snapshot(order), carrier_order_id=None, reason="too late", failed_at=now)
        )
        await publish(portal.amqp_url, late, completed, failed)  # a late one, a redelivery, a contradiction
        # A marker event behind them: once it is applied, the ones before it were handled too.
        marker_order = await place(client, "tvilling")
        await publish(
            portal.amqp_url,
            worker_event(
                OrderSubmitted(order_id=uuid.UUID(marker_order["id"]), carrier_order_id="m", submitted_at=now)
            ),
        )
        await wait_status(client, marker_order["id"], "submitted")

        final = (await client.get(f"/api/v1/orders/{order['id']}")).json()
        me = (await client.get("/api/v1/me")).json()
    assert final["status"] == "completed"
    assert final["failure_reason"] is None
    active = [s["product_code"] for s in me["subscription"]["active_services"]]
    assert active.count("nettvern") == 1


async def test_a_failed_order_carries_its_reason_and_changes_no_subscription(portal: Portal) -> None:
    async with portal.client() as client:
        order = await place(client, "bedrift-total-e")
        await publish(
            portal.amqp_url,
            worker_event(
                OrderFailed(
                    order=snapshot(order),
                    carrier_order_id="c-9",
                    reason="Carrier rejected the order",
                    failed_at=datetime.now(UTC),
                )
            ),
        )
        final = await wait_status(client, order["id"], "failed")
        me = (await client.get("/api/v1/me")).json()
    assert final["failure_reason"] == "Carrier rejected the order"
    assert me["subscription"]["plan"]["code"] == "bedrift-total-c"


async def test_a_completed_plan_change_updates_the_subscription(portal: Portal) -> None:
    async with portal.client() as client:
        order = await place(client, "bedrift-total-e")
        await publish(
            portal.amqp_url,
            worker_event(
                OrderCompleted(order=snapshot(order), carrier_order_id="c-1", completed_at=datetime.now(UTC))
            ),
        )
        await wait_status(client, order["id"], "completed")
        me = (await client.get("/api/v1/me")).json()
    assert me["subscription"]["plan"]["name"] == "Bedrift Total E (50GB)"


async def publish_and_wait(portal: Portal, *envelopes: Envelope[Any]) -> None:
    """Publish worker events and wait until the portal has handled each (its inbox holds their ids:
    it records them in the transaction that applies them), whatever order it took them in."""
    await publish(portal.amqp_url, *envelopes)
    ids = {e.id for e in envelopes}
    engine = create_engine(portal.database_url)

    async def handled() -> bool:
        async with engine.connect() as conn:
            done = await conn.scalars(
                select(tables.inbox.c.message_id).where(tables.inbox.c.message_id.in_(ids))
            )
            return set(done.all()) == ids

    try:
        await wait_for(handled, timeout_s=10, what="the portal to handle the events")
    finally:
        await engine.dispose()


async def test_the_carriers_state_and_expected_date_are_stored_and_follow_its_progress(
    portal: Portal,
) -> None:
    async with portal.client() as client:
        order = await place(client, "min-sky-50gb")
        order_id = uuid.UUID(order["id"])
        t0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
        expected = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)
        await publish(
            portal.amqp_url,
            worker_event(
                OrderSubmitted(
                    order_id=order_id,
                    carrier_order_id="c-7",
                    submitted_at=t0,
                    carrier_state="acknowledged",
                    expected_completion_at=expected,
                )
            ),
        )
        submitted = await wait_status(client, order["id"], "submitted")
        assert submitted["carrier_state"] == "acknowledged"
        assert datetime.fromisoformat(submitted["expected_completion_at"]) == expected
        assert submitted["failure_code"] is None

        later = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)
        progressed = OrderProgressed(
            order_id=order_id,
            carrier_order_id="c-7",
            carrier_state="inProgress",
            expected_completion_at=later,
            progressed_at=t0 + timedelta(hours=2),
        )
        stale = OrderProgressed(
            order_id=order_id,
            carrier_order_id="c-7",
            carrier_state="held",
            expected_completion_at=None,
            progressed_at=t0 + timedelta(hours=1),  # older news than the one before it
        )
        # Handled in either order (the portal handles messages concurrently), they end the same.
        await publish_and_wait(portal, worker_event(progressed), worker_event(stale))
        moved_on = (await client.get(f"/api/v1/orders/{order['id']}")).json()
    assert moved_on["status"] == "submitted"
    assert moved_on["carrier_state"] == "inProgress"
    assert datetime.fromisoformat(moved_on["expected_completion_at"]) == later


async def test_progress_for_a_completed_order_changes_nothing(portal: Portal) -> None:
    async with portal.client() as client:
        order = await place(client, "nettvern")
        now = datetime.now(UTC)
        await publish(
            portal.amqp_url,
            worker_event(OrderCompleted(order=snapshot(order), carrier_order_id="c-1", completed_at=now)),
        )
        await wait_status(client, order["id"], "completed")
        await publish_and_wait(
            portal,
            worker_event(
                OrderProgressed(
                    order_id=uuid.UUID(order["id"]),
                    carrier_order_id="c-1",
                    carrier_state="inProgress",
                    expected_completion_at=now + timedelta(days=3),
                    progressed_at=now + timedelta(seconds=1),
                )
            ),
        )
        final = (await client.get(f"/api/v1/orders/{order['id']}")).json()
    assert final["status"] == "completed"
    assert final["carrier_state"] is None
    assert final["expected_completion_at"] is None


async def test_progress_before_its_late_submitted_moves_a_received_order_on(portal: Portal) -> None:
    async with portal.client() as client:
        order = await place(client, "tvilling")
        now = datetime.now(UTC)
        await publish_and_wait(
            portal,
            worker_event(
                OrderProgressed(
                    order_id=uuid.UUID(order["id"]),
                    carrier_order_id="c-2",
                    carrier_state="inProgress",
                    progressed_at=now,
                )
            ),
            worker_event(
                OrderSubmitted(
                    order_id=uuid.UUID(order["id"]),
                    carrier_order_id="c-2",
                    submitted_at=now - timedelta(minutes=1),
                    carrier_state="acknowledged",
                )
            ),
        )
        final = (await client.get(f"/api/v1/orders/{order['id']}")).json()
    assert final["status"] == "submitted"
    assert final["carrier_state"] == "inProgress"  # the late OrderSubmitted took nothing back


@pytest.mark.parametrize(
    "code",
    [
        OrderFailureCode.CARRIER_DEADLINE_PASSED,
        OrderFailureCode.CARRIER_UNREACHABLE,
        OrderFailureCode.CARRIER_REJECTED,
    ],
)
async def test_a_failed_order_carries_its_failure_code(portal: Portal, code: OrderFailureCode) -> None:
    async with portal.client() as client:
        order = await place(client, "tvilling")
        await publish(
            portal.amqp_url,
            worker_event(
                OrderFailed(
                    order=snapshot(order),
                    carrier_order_id=None,
                    reason="Not done by the deadline",
                    reason_code=code,
                    failed_at=datetime.now(UTC),
                )
            ),
        )
        final = await wait_status(client, order["id"], "failed")
    assert final["failure_code"] == code.value
    assert final["failure_reason"] == "Not done by the deadline"
