"""order-worker as a real process, against real RabbitMQ, PostgreSQL and the carrier simulator."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aio_pika
import httpx
import pytest
from aio_pika.abc import AbstractQueue, AbstractRobustConnection
from mport_shared.devstack import CARRIER_PATH, Stack
from mport_shared.events import (
    Billing,
    EmployeeCharge,
    OrderCompleted,
    OrderFailed,
    OrderKind,
    OrderPlaced,
    OrderSnapshot,
    OrderSubmitted,
    envelop,
)
from mport_shared.messaging.connection import confirming_channel, connect
from mport_shared.messaging.topology import EXCHANGE, declare_all, declare_exchange
from mport_shared.testing import MakeStack, wait_for

pytestmark = pytest.mark.integration

STATUS_KEYS = (OrderSubmitted.event_type, OrderCompleted.event_type, OrderFailed.event_type)


@pytest.fixture
async def broker(amqp_url: str) -> AsyncIterator[AbstractRobustConnection]:
    connection = await connect(amqp_url, name="test")
    await declare_all(await confirming_channel(connection))
    yield connection
    await connection.close()


@pytest.fixture
async def status_trail(broker: AbstractRobustConnection) -> AbstractQueue:
    """A queue that sees every order status event, as the portal and payroll would."""
    channel = await broker.channel()
    queue = await channel.declare_queue("status-probe", durable=True, arguments={"x-queue-type": "quorum"})
    for key in STATUS_KEYS:
        await queue.bind(EXCHANGE, routing_key=key)
    return queue


def order_placed(product: str = "Surf-15GB") -> OrderPlaced:
    return OrderPlaced(
        order=OrderSnapshot(
            order_id=uuid.uuid4(),
            company_id=uuid.uuid4(),
            employee_id=uuid.uuid4(),
            employee_number="1001",
            msisdn="4791234567",
            product_code="ekstra-data-15gb",
            carrier_product_code=product,
            kind=OrderKind.ADDON,
            action="add",
            employee_charge=EmployeeCharge(amount_ore=14_900, billing=Billing.ONE_OFF),
            placed_at=datetime.now(UTC),
        )
    )


async def publish(broker: AbstractRobustConnection, body: bytes, routing_key: str) -> None:
    channel = await confirming_channel(broker)
    exchange = await declare_exchange(channel)
    await exchange.publish(
        aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT, type=routing_key),
        routing_key=routing_key,
    )
    await channel.close()


async def send(broker: AbstractRobustConnection, event: OrderPlaced) -> None:
    envelope = envelop(event, source="/t", correlation_id=str(event.order.order_id))
    await publish(broker, envelope.model_dump_json().encode(), OrderPlaced.event_type)


async def wait_completed(
    queue: AbstractQueue, order_id: uuid.UUID, trail: list[str], *, timeout_s: float
) -> None:
    """Collect the order's status events into `trail` until OrderCompleted is among them."""

    async def completed() -> bool:
        return OrderCompleted.event_type in await trail_of(queue, order_id, trail)

    await wait_for(completed, timeout_s=timeout_s, what=f"OrderCompleted for {order_id}")


async def trail_of(queue: AbstractQueue, order_id: uuid.UUID, into: list[str]) -> list[str]:
    """Collect the status event types seen so far for one order."""
    while (message := await queue.get(no_ack=True, fail=False)) is not None:
        body = json.loads(message.body)
        data = body["data"]
        if str(data.get("order_id") or data["order"]["order_id"]) == str(order_id):
            into.append(body["type"])
    return into


async def carrier_orders(stack: Stack, order_id: uuid.UUID) -> list[dict[str, object]]:
    url = f"{stack.url('carrier-simulator')}{CARRIER_PATH}/productOrder"
    async with httpx.AsyncClient() as client:
        response = await client.get(url, params={"externalId": str(order_id)})
    response.raise_for_status()
    orders: list[dict[str, object]] = response.json()
    return orders


async def test_a_duplicated_order_placed_makes_one_carrier_order_and_one_status_trail(
    make_stack: MakeStack, broker: AbstractRobustConnection, status_trail: AbstractQueue
) -> None:
    stack = await make_stack("carrier-simulator", "order-worker")
    event = order_placed()
    envelope = envelop(event, source="/test", correlation_id=str(event.order.order_id))
    body = envelope.model_dump_json().encode()
    # The same message twice (a redelivery), and the same order under a new message id
    # (a publisher that resent it): all three must have one effect.
    republished = envelope.model_copy(update={"id": str(uuid.uuid4())}).model_dump_json().encode()
    for raw in (body, body, republished):
        await publish(broker, raw, OrderPlaced.event_type)

    trail: list[str] = []
    await wait_completed(status_trail, event.order.order_id, trail, timeout_s=20)
    await asyncio.sleep(1.0)  # give a duplicate, if one were coming, the time to show up
    await trail_of(status_trail, event.order.order_id, trail)
    assert trail == [OrderSubmitted.event_type, OrderCompleted.event_type]
    assert len(await carrier_orders(stack, event.order.order_id)) == 1


async def test_a_carrier_rejection_is_a_failed_order_with_the_reason(
    make_stack: MakeStack, broker: AbstractRobustConnection, status_trail: AbstractQueue
) -> None:
    await make_stack("carrier-simulator", "order-worker")
    event = order_placed(product="No-Such-Offering")
    await send(broker, event)
    failed: list[aio_pika.abc.AbstractIncomingMessage] = []

    async def got_failed() -> bool:
        while (message := await status_trail.get(no_ack=True, fail=False)) is not None:
            if message.routing_key == OrderFailed.event_type:
                failed.append(message)
        return bool(failed)

    await wait_for(got_failed, timeout_s=20, what="OrderFailed")
    data = json.loads(failed[0].body)["data"]
    assert "No-Such-Offering" in data["reason"]


async def test_a_worker_killed_mid_order_loses_nothing_and_duplicates_nothing(
    make_stack: MakeStack, broker: AbstractRobustConnection, status_trail: AbstractQueue
) -> None:
    # The carrier takes 3 s, so the kill lands while the worker waits for it.
    stack = await make_stack(
        "carrier-simulator",
        "order-worker",
        extra_env={"carrier-simulator": {"CARRIER_SIM_LATENCY_MS": "3000"}},
    )
    event = order_placed()
    await send(broker, event)

    async def at_carrier() -> bool:
        return len(await carrier_orders(stack, event.order.order_id)) == 1

    await wait_for(at_carrier, timeout_s=15, what="the order to reach the carrier")
    stack.kill("order-worker")
    await stack.stop("order-worker")
    await stack.start("order-worker")

    trail: list[str] = []
    await wait_completed(status_trail, event.order.order_id, trail, timeout_s=30)
    await asyncio.sleep(1.0)  # give a duplicate, if one were coming, the time to show up
    await trail_of(status_trail, event.order.order_id, trail)
    assert trail == [OrderSubmitted.event_type, OrderCompleted.event_type]
    assert len(await carrier_orders(stack, event.order.order_id)) == 1


async def test_an_unavailable_carrier_is_retried_with_delays_until_it_answers(
    make_stack: MakeStack, broker: AbstractRobustConnection, status_trail: AbstractQueue
) -> None:
    stack = await make_stack(
        "carrier-simulator",
        "order-worker",
        extra_env={
            "carrier-simulator": {"CARRIER_SIM_UNAVAILABLE_RATE": "1"},
            "order-worker": {"RETRY_DELAYS_MS": "[300, 600, 1200, 2400]"},
        },
    )
    event = order_placed()
    await send(broker, event)
    await asyncio.sleep(1.0)  # at least one failed attempt, now waiting in a retry queue
    async with httpx.AsyncClient() as client:
        config = await client.put(
            f"{stack.url('carrier-simulator')}/simulator/config", json={"unavailable_rate": 0}
        )
        config.raise_for_status()
    trail: list[str] = []
    await wait_completed(status_trail, event.order.order_id, trail, timeout_s=20)
    async with httpx.AsyncClient() as client:
        metrics = (await client.get(f"{stack.url('order-worker')}/metrics")).text
    retried = [
        line
        for line in metrics.splitlines()
        if line.startswith("mport_messages_handled_total") and 'outcome="retried"' in line
    ]
    assert retried
    assert float(retried[0].rsplit(" ", 1)[1]) >= 1


async def test_sigterm_lets_the_worker_finish_the_order_in_hand_before_it_exits(
    make_stack: MakeStack, broker: AbstractRobustConnection, status_trail: AbstractQueue
) -> None:
    stack = await make_stack(
        "carrier-simulator",
        "order-worker",
        extra_env={"carrier-simulator": {"CARRIER_SIM_LATENCY_MS": "2000"}},
    )
    event = order_placed()
    await send(broker, event)

    async def at_carrier() -> bool:
        return len(await carrier_orders(stack, event.order.order_id)) == 1

    await wait_for(at_carrier, timeout_s=15, what="the order to reach the carrier")
    await stack.stop("order-worker")  # SIGTERM, and wait for the process to exit
    # No worker is running now: the outcome can only have come from the one that drained.
    trail = await trail_of(status_trail, event.order.order_id, [])
    assert trail == [OrderSubmitted.event_type, OrderCompleted.event_type]
