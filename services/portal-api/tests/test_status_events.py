"""Order status events from RabbitMQ move orders forward only, once, whatever their order."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from mport_shared.events import (
    OrderCompleted,
    OrderFailed,
    OrderSubmitted,
)
from mport_shared.testing import wait_for

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
