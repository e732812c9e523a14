"""Order status events from RabbitMQ move orders forward only, once, whatever their order."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import aio_pika
import httpx
import pytest
from mport_shared.events import (
    Billing,
    EmployeeCharge,
    Envelope,
    EventPayload,
    OrderCompleted,
    OrderFailed,
    OrderKind,
    OrderSnapshot,
    OrderSubmitted,
    envelop,
)
from mport_shared.messaging.connection import confirming_channel, connect
from mport_shared.messaging.topology import declare_exchange
from mport_shared.testing import wait_for

from .conftest import Portal, sign_in

pytestmark = pytest.mark.integration


async def publish(portal: Portal, *envelopes: Envelope[Any]) -> None:
    connection = await connect(portal.amqp_url, name="test-publisher")
    try:
        exchange = await declare_exchange(await confirming_channel(connection))
        for envelope in envelopes:
            await exchange.publish(
                aio_pika.Message(envelope.model_dump_json().encode(), type=envelope.type),
                routing_key=envelope.type,
            )
    finally:
        await connection.close()


async def place(client: httpx.AsyncClient, product_code: str) -> dict[str, Any]:
    csrf = await sign_in(client, "kari.nordmann@demo.no")
    response = await client.post(
        "/api/v1/orders",
        json={"product_code": product_code},
        headers={"X-CSRF-Token": csrf, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 202
    body: dict[str, Any] = response.json()
    return body


def snapshot(order: dict[str, Any]) -> OrderSnapshot:
    return OrderSnapshot(
        order_id=uuid.UUID(order["id"]),
        company_id=uuid.uuid4(),
        employee_id=uuid.uuid4(),
        employee_number="1001",
        msisdn=order["msisdn"],
        product_code=order["product_code"],
        carrier_product_code=order["carrier_product_code"],
        kind=OrderKind(order["kind"]),
        action="add",
        employee_charge=EmployeeCharge(amount_ore=0, billing=Billing.MONTHLY),
        placed_at=datetime.now(UTC),
    )


def env(payload: EventPayload) -> Envelope[Any]:
    return envelop(payload, source="/mport/order-worker", correlation_id="c")


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
        completed = env(OrderCompleted(order=snapshot(order), carrier_order_id="carrier-1", completed_at=now))
        await publish(portal, completed)
        await wait_status(client, order["id"], "completed")
        late = env(OrderSubmitted(order_id=uuid.UUID(order["id"]), carrier_order_id="late", submitted_at=now))
        failed = env(
            OrderFailed(order=snapshot(order), carrier_order_id=None, reason="too late", failed_at=now)
        )
        await publish(portal, late, completed, failed)  # a late one, a redelivery, a contradiction
        # A marker event behind them: once it is applied, the ones before it were handled too.
        marker_order = await place(client, "tvilling")
        await publish(
            portal,
            env(
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
            portal,
            env(
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
            portal,
            env(
                OrderCompleted(order=snapshot(order), carrier_order_id="c-1", completed_at=datetime.now(UTC))
            ),
        )
        await wait_status(client, order["id"], "completed")
        me = (await client.get("/api/v1/me")).json()
    assert me["subscription"]["plan"]["name"] == "Bedrift Total E (50GB)"
