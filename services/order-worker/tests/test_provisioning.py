"""order-worker as a real process, against real RabbitMQ, PostgreSQL and the carrier simulator
(also a real process): duplicates, crashes, and a carrier that is slow, away or lying."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import httpx
import pytest
from aio_pika.abc import AbstractQueue, AbstractRobustConnection
from mport_shared.devstack import CARRIER_PATH, Stack, free_port
from mport_shared.events import (
    OrderCompleted,
    OrderFailed,
    OrderPlaced,
    OrderProgressed,
    OrderSubmitted,
    envelop,
)
from mport_shared.messaging.connection import confirming_channel, connect
from mport_shared.messaging.topology import EXCHANGE, ORDER_WORKER, declare_all, declare_exchange
from mport_shared.testing import MakeStack, wait_for

from .conftest import snapshot

pytestmark = pytest.mark.integration

STATUS_KEYS = (
    OrderSubmitted.event_type,
    OrderProgressed.event_type,
    OrderCompleted.event_type,
    OrderFailed.event_type,
)
SECRET = "test-listener-secret"
# Quick schedules, so that what takes minutes with a real carrier takes seconds here.
QUICK = {
    "SUBMIT_RETRY_FIRST_S": "0.2",
    "SUBMIT_RETRY_MAX_S": "1",
    "CHECK_FIRST_S": "1",
    "CHECK_MAX_S": "2",
    "CHECK_AFTER_EXPECTED_S": "0.5",
    "RECONCILE_POLL_S": "0.2",
    "LEASE_S": "3",
    "CARRIER_LISTENER_SECRET": SECRET,
    # Broker retries alone would give up on a message after 0.6 s.
    "RETRY_DELAYS_MS": "[200, 400]",
}
FAST_NOTIFICATIONS = {
    "CARRIER_SIM_NOTIFICATION_RETRY_INITIAL_DELAY_S": "0.1",
    "CARRIER_SIM_NOTIFICATION_RETRY_MAX_DELAY_S": "0.5",
}


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


class Trails:
    """Every status event seen so far, by order."""

    def __init__(self, queue: AbstractQueue) -> None:
        self._queue = queue
        self.events: dict[str, list[dict[str, Any]]] = {}
        self._seen: set[str] = set()

    async def collect(self) -> None:
        while (message := await self._queue.get(no_ack=True, fail=False)) is not None:
            body = json.loads(message.body)
            # Publishing is at least once: a worker killed between the broker's confirm and
            # marking its outbox row sent publishes that row again, under the same id, and every
            # consumer's inbox drops the copy. So do we; a second event under a new id still counts.
            if body["id"] in self._seen:
                continue
            self._seen.add(body["id"])
            data = body["data"]
            order_id = str(data.get("order_id") or data["order"]["order_id"])
            self.events.setdefault(order_id, []).append(body)

    def types(self, order_id: uuid.UUID) -> list[str]:
        return [e["type"] for e in self.events.get(str(order_id), [])]

    def last(self, order_id: uuid.UUID, event_type: str) -> dict[str, Any]:
        return next(e for e in reversed(self.events[str(order_id)]) if e["type"] == event_type)["data"]

    async def wait_finished(self, *order_ids: uuid.UUID, timeout_s: float) -> None:
        finished = {OrderCompleted.event_type, OrderFailed.event_type}

        async def all_finished() -> bool:
            await self.collect()
            return all(finished & set(self.types(o)) for o in order_ids)

        await wait_for(all_finished, timeout_s=timeout_s, what=f"{len(order_ids)} orders to finish")


@pytest.fixture
def trails(status_trail: AbstractQueue) -> Trails:
    return Trails(status_trail)


def order_placed(product: str = "Surf-15GB") -> OrderPlaced:
    return OrderPlaced(order=snapshot(carrier_product_code=product))


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


async def carrier_orders(stack: Stack, order_id: uuid.UUID) -> list[dict[str, Any]]:
    url = f"{stack.url('carrier-simulator')}{CARRIER_PATH}/productOrder"
    async with httpx.AsyncClient() as client:
        response = await client.get(url, params={"externalId": str(order_id)})
    response.raise_for_status()
    orders: list[dict[str, Any]] = response.json()
    return orders


async def wait_at_carrier(stack: Stack, events: list[OrderPlaced], *, timeout_s: float) -> None:
    async def all_at_carrier() -> bool:
        return all([len(await carrier_orders(stack, e.order.order_id)) == 1 for e in events])

    await wait_for(
        all_at_carrier, timeout_s=timeout_s, what=f"every order at the carrier within {timeout_s} s"
    )


async def configure_carrier(stack: Stack, **config: Any) -> None:
    async with httpx.AsyncClient() as client:
        (
            await client.put(f"{stack.url('carrier-simulator')}/simulator/config", json=config)
        ).raise_for_status()


async def hubs(stack: Stack) -> list[dict[str, Any]]:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{stack.url('carrier-simulator')}/simulator/hubs")
    response.raise_for_status()
    found: list[dict[str, Any]] = response.json()
    return found


async def metric(stack: Stack, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include `labels`, from the worker's /metrics."""
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"{stack.url('order-worker')}/metrics")).text
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{key}="{value}"' in line for key, value in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def wait_registered(stack: Stack, count: int = 1) -> None:
    async def registered() -> bool:
        return len(await hubs(stack)) == count

    await wait_for(registered, timeout_s=15, what=f"{count} listener(s) registered with the carrier")


async def dead_letters(broker: AbstractRobustConnection) -> int:
    channel = await broker.channel()
    queue = await channel.declare_queue(ORDER_WORKER.dead_letter, passive=True)
    count = queue.declaration_result.message_count or 0
    await channel.close()
    return count


def assert_one_outcome(types: list[str], outcome: str = OrderCompleted.event_type) -> None:
    """One outcome, last; before it at most one OrderSubmitted (none when the carrier finished
    at once) and whatever progress the carrier reported."""
    assert types.count(outcome) == 1, types
    assert types[-1] == outcome, types
    assert types.count(OrderSubmitted.event_type) <= 1, types
    other = OrderFailed.event_type if outcome == OrderCompleted.event_type else OrderCompleted.event_type
    assert other not in types, types


async def test_a_duplicated_order_placed_makes_one_carrier_order_and_one_status_trail(
    make_stack: MakeStack, broker: AbstractRobustConnection, trails: Trails
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

    await trails.wait_finished(event.order.order_id, timeout_s=20)
    await asyncio.sleep(1.0)  # give a duplicate, if one were coming, the time to show up
    await trails.collect()
    assert_one_outcome(trails.types(event.order.order_id))
    assert len(await carrier_orders(stack, event.order.order_id)) == 1


async def test_a_carrier_rejection_is_a_failed_order_with_the_reason_and_no_charge(
    make_stack: MakeStack, broker: AbstractRobustConnection, trails: Trails
) -> None:
    await make_stack("carrier-simulator", "order-worker")
    event = order_placed(product="No-Such-Offering")
    await send(broker, event)
    await trails.wait_finished(event.order.order_id, timeout_s=20)
    failed = trails.last(event.order.order_id, OrderFailed.event_type)
    assert "No-Such-Offering" in failed["reason"]
    assert failed["reason_code"] == "carrier_rejected"
    assert failed["order"]["employee_charge"]["amount_ore"] == 0


async def test_a_carrier_away_for_longer_than_every_retry_delay_strands_nothing(
    make_stack: MakeStack, broker: AbstractRobustConnection, trails: Trails
) -> None:
    stack = await make_stack(
        "carrier-simulator",
        "order-worker",
        extra_env={"carrier-simulator": {"CARRIER_SIM_DOWN": "true"}, "order-worker": QUICK},
    )
    events = [order_placed() for _ in range(3)]
    for event in events:
        await send(broker, event)
    await asyncio.sleep(4)  # far longer than the broker retries (0.2 s + 0.4 s) would wait
    await trails.collect()
    assert all(trails.types(e.order.order_id) == [] for e in events)
    await configure_carrier(stack, down=False)

    await trails.wait_finished(*(e.order.order_id for e in events), timeout_s=20)
    for event in events:
        assert_one_outcome(trails.types(event.order.order_id))
        assert len(await carrier_orders(stack, event.order.order_id)) == 1
    assert await dead_letters(broker) == 0


async def test_a_slow_carrier_holds_no_delivery_and_its_outcome_arrives_by_notification(
    make_stack: MakeStack, broker: AbstractRobustConnection, trails: Trails
) -> None:
    # PREFETCH 1: if a delivery were held while the carrier works, orders would reach it one
    # by one, 4 s apart. No check is due for a minute: only a notification can finish them.
    stack = await make_stack(
        "carrier-simulator",
        "order-worker",
        extra_env={
            "carrier-simulator": {"CARRIER_SIM_LATENCY_MS": "4000", **FAST_NOTIFICATIONS},
            "order-worker": {**QUICK, "PREFETCH": "1", "CHECK_FIRST_S": "60", "CHECK_AFTER_EXPECTED_S": "60"},
        },
    )
    await wait_registered(stack)
    events = [order_placed() for _ in range(5)]
    for event in events:
        await send(broker, event)

    await wait_at_carrier(stack, events, timeout_s=3)
    # The worker is killed and restarted while the carrier works: the new process registers
    # its own listener and removes the one its predecessor left behind.
    stack.kill("order-worker")
    await stack.stop("order-worker")
    await stack.start("order-worker")
    await trails.wait_finished(*(e.order.order_id for e in events), timeout_s=20)
    for event in events:
        assert_one_outcome(trails.types(event.order.order_id))
    assert await metric(stack, "mport_carrier_notifications_total", outcome="confirmed") >= 1
    assert len(await hubs(stack)) == 1


async def test_with_every_notification_lost_the_outcome_arrives_by_reconciliation(
    make_stack: MakeStack, broker: AbstractRobustConnection, trails: Trails
) -> None:
    stack = await make_stack(
        "carrier-simulator",
        "order-worker",
        extra_env={
            "carrier-simulator": {
                "CARRIER_SIM_LATENCY_MS": "3000",
                "CARRIER_SIM_NOTIFICATION_DROP_RATE": "1",
            },
            "order-worker": QUICK,
        },
    )
    await wait_registered(stack)
    events = [order_placed() for _ in range(3)]
    for event in events:
        await send(broker, event)

    await wait_at_carrier(stack, events, timeout_s=5)
    stack.kill("order-worker")
    await stack.stop("order-worker")
    await stack.start("order-worker")
    await trails.wait_finished(*(e.order.order_id for e in events), timeout_s=20)
    for event in events:
        assert_one_outcome(trails.types(event.order.order_id))
        assert len(await carrier_orders(stack, event.order.order_id)) == 1
    assert await metric(stack, "mport_carrier_notifications_total") == 0
    assert sum(hub["dropped"] for hub in await hubs(stack)) > 0


async def test_past_its_deadline_an_order_fails_with_its_reason_and_no_charge(
    make_stack: MakeStack, broker: AbstractRobustConnection, trails: Trails
) -> None:
    stack = await make_stack(
        "carrier-simulator",
        "order-worker",
        extra_env={
            "carrier-simulator": {"CARRIER_SIM_LATENCY_MS": "60000"},
            "order-worker": {**QUICK, "ORDER_DEADLINES_S": '{"addon": 2}'},
        },
    )
    slow = order_placed()
    await send(broker, slow)
    await trails.wait_finished(slow.order.order_id, timeout_s=15)
    # And one the carrier never took: it was away until after the deadline.
    await configure_carrier(stack, down=True)
    away = order_placed()
    await send(broker, away)
    await trails.wait_finished(away.order.order_id, timeout_s=15)

    assert trails.types(slow.order.order_id) == [OrderSubmitted.event_type, OrderFailed.event_type]
    failed = trails.last(slow.order.order_id, OrderFailed.event_type)
    assert failed["reason_code"] == "carrier_deadline_passed"
    assert "deadline" in failed["reason"]
    assert failed["order"]["employee_charge"]["amount_ore"] == 0
    assert trails.types(away.order.order_id) == [OrderFailed.event_type]
    never_taken = trails.last(away.order.order_id, OrderFailed.event_type)
    assert never_taken["reason_code"] == "carrier_unreachable"
    assert never_taken["order"]["employee_charge"]["amount_ore"] == 0


async def test_a_forged_notification_changes_nothing(
    make_stack: MakeStack, broker: AbstractRobustConnection, trails: Trails
) -> None:
    stack = await make_stack(
        "carrier-simulator",
        "order-worker",
        extra_env={"carrier-simulator": {"CARRIER_SIM_LATENCY_MS": "60000"}, "order-worker": QUICK},
    )
    event = order_placed()
    await send(broker, event)

    async def submitted() -> bool:
        await trails.collect()
        return OrderSubmitted.event_type in trails.types(event.order.order_id)

    await wait_for(submitted, timeout_s=10, what="the order to be submitted")
    [at_carrier] = await carrier_orders(stack, event.order.order_id)
    forged = {
        "eventId": "forged-1",
        "eventType": "ProductOrderStateChangeEvent",
        "@type": "ProductOrderStateChangeEvent",
        "event": {"productOrder": {**at_carrier, "state": "completed"}},
    }
    listener = f"{stack.url('order-worker')}/listener/productOrderStateChangeEvent"
    async with httpx.AsyncClient() as client:
        wrong_token = await client.post(listener, params={"token": "guess"}, json=forged)
        no_token = await client.post(listener, json=forged)
        right_token = await client.post(listener, params={"token": SECRET}, json=forged)
        not_json = await client.post(listener, params={"token": SECRET}, content=b"{")
    assert (wrong_token.status_code, no_token.status_code) == (401, 401)
    assert wrong_token.json()["@type"] == "Error"
    assert right_token.status_code == 204  # accepted as a hint, and checked with the carrier
    assert not_json.status_code == 400

    async def contradicted() -> bool:
        return await metric(stack, "mport_carrier_notifications_total", outcome="contradicted") == 1

    await wait_for(contradicted, timeout_s=10, what="the claim to be checked with the carrier")
    await asyncio.sleep(0.5)
    await trails.collect()
    assert trails.types(event.order.order_id) == [OrderSubmitted.event_type]


async def test_two_workers_one_killed_mid_flow_give_each_order_one_carrier_order_and_one_outcome(
    make_stack: MakeStack, broker: AbstractRobustConnection, trails: Trails
) -> None:
    stack = await make_stack(
        "carrier-simulator",
        "order-worker",
        extra_env={
            "carrier-simulator": {"CARRIER_SIM_LATENCY_MS": "1500", "CARRIER_SIM_LATENCY_JITTER_MS": "1000",
                                  "CARRIER_SIM_NOTIFICATION_DROP_RATE": "0.5", **FAST_NOTIFICATIONS},
            "order-worker": QUICK,
        },
    )  # fmt: skip
    # A second order-worker process on the same database and broker, on a port of its own.
    second = Stack(
        dataclasses.replace(stack.config, ports={**stack.config.ports, "order-worker": free_port()})
    )
    await second.start("order-worker")
    try:
        await wait_registered(stack, count=2)
        events = [order_placed() for _ in range(30)]
        for event in events[:20]:
            await send(broker, event)
        await asyncio.sleep(0.5)
        stack.kill("order-worker")  # mid-flow: deliveries in hand, orders leased and at the carrier
        for event in events[20:]:
            await send(broker, event)
        await trails.wait_finished(*(e.order.order_id for e in events), timeout_s=45)
        await asyncio.sleep(1.0)  # time for a duplicate, if one were coming
        await trails.collect()
        for event in events:
            assert_one_outcome(trails.types(event.order.order_id))
            assert len(await carrier_orders(stack, event.order.order_id)) == 1
    finally:
        await second.stop()


async def test_sigterm_records_the_submission_in_hand_and_removes_the_listener(
    make_stack: MakeStack, broker: AbstractRobustConnection, trails: Trails
) -> None:
    stack = await make_stack(
        "carrier-simulator",
        "order-worker",
        extra_env={"carrier-simulator": {"CARRIER_SIM_LATENCY_MS": "3000"}, "order-worker": QUICK},
    )
    await wait_registered(stack)
    event = order_placed()
    await send(broker, event)

    async def at_carrier() -> bool:
        return len(await carrier_orders(stack, event.order.order_id)) == 1

    await wait_for(at_carrier, timeout_s=10, what="the order to reach the carrier")
    await stack.stop("order-worker")  # SIGTERM: it exits without waiting for the carrier
    await trails.collect()
    assert trails.types(event.order.order_id) == [OrderSubmitted.event_type]
    assert await hubs(stack) == []
    await stack.start("order-worker")
    await trails.wait_finished(event.order.order_id, timeout_s=15)
    assert trails.types(event.order.order_id) == [OrderSubmitted.event_type, OrderCompleted.event_type]
