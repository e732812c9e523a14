"""The payroll-worker as a real process on real RabbitMQ and PostgreSQL: a redelivered
OrderCompleted adds no line, events out of order, a closed period through the internal API,
the worker SIGKILLed mid-message, and its queue empty after each run."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import aio_pika
import asyncpg
import httpx
import pytest
from aio_pika.abc import AbstractQueue, AbstractRobustConnection
from mport_shared.devstack import Stack
from mport_shared.events import Billing, EventPayload, envelop
from mport_shared.messaging.connection import confirming_channel, connect
from mport_shared.messaging.topology import EXCHANGE, declare_all, declare_exchange
from mport_shared.testing import MakeStack, RabbitServer, wait_for

from .conftest import COMPANY, completed, failed, snapshot

pytestmark = pytest.mark.integration

TOKEN = "payroll-test-token"
DEDUCTION_KEYS = ("mport.payroll.deduction_recorded.v1", "mport.payroll.deduction_reversed.v1")


@pytest.fixture
async def broker(amqp_url: str) -> AsyncIterator[AbstractRobustConnection]:
    connection = await connect(amqp_url, name="test")
    await declare_all(await confirming_channel(connection))
    yield connection
    await connection.close()


class Deductions:
    """Every deduction event the worker published, as the payroll system would see them."""

    def __init__(self, queue: AbstractQueue) -> None:
        self._queue = queue
        self.events: list[dict[str, Any]] = []

    async def collect(self) -> list[dict[str, Any]]:
        while (message := await self._queue.get(no_ack=True, fail=False)) is not None:
            self.events.append(json.loads(message.body))
        return self.events

    async def wait(self, count: int, *, timeout_s: float = 20) -> list[dict[str, Any]]:
        async def enough() -> bool:
            return len({e["data"]["line"]["line_id"] for e in await self.collect()}) >= count

        await wait_for(enough, timeout_s=timeout_s, what=f"{count} deduction events")
        return self.events


@pytest.fixture
async def deductions(broker: AbstractRobustConnection) -> Deductions:
    channel = await broker.channel()
    queue = await channel.declare_queue("payroll-probe", durable=True, arguments={"x-queue-type": "quorum"})
    for key in DEDUCTION_KEYS:
        await queue.bind(EXCHANGE, routing_key=key)
    return Deductions(queue)


@pytest.fixture
async def stack(make_stack: MakeStack) -> Stack:
    return await make_stack("payroll-worker", extra_env={"payroll-worker": {"PAYROLL_API_TOKEN": TOKEN}})


async def publish(broker: AbstractRobustConnection, payload: EventPayload, *, times: int = 1) -> None:
    """As the order-worker's relay does; `times` > 1 is the same message again (a redelivery)."""
    envelope = envelop(payload, source="/test", correlation_id="test")
    channel = await confirming_channel(broker)
    exchange = await declare_exchange(channel)
    for _ in range(times):
        await exchange.publish(
            aio_pika.Message(
                envelope.model_dump_json().encode(),
                message_id=envelope.id,
                type=envelope.type,
                content_type="application/cloudevents+json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key=envelope.type,
        )
    await channel.close()


def pg_url(stack: Stack) -> str:
    return stack.config.database_urls["payroll-worker"].replace("postgresql+asyncpg", "postgresql")


async def lines(stack: Stack) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(pg_url(stack))
    try:
        return list(await connection.fetch("SELECT * FROM deduction_lines ORDER BY period, kind, line_id"))
    finally:
        await connection.close()


async def recorded(stack: Stack, count_query: str, order_id: uuid.UUID) -> None:
    """Wait until the worker has handled a message: its row is in the worker's database."""

    async def there() -> bool:
        connection = await asyncpg.connect(pg_url(stack))
        try:
            return bool(await connection.fetchval(count_query, str(order_id)))
        finally:
            await connection.close()

    await wait_for(there, what=count_query)


async def drained(rabbit_server: RabbitServer, amqp_url: str, name: str = "payroll-worker") -> None:
    """The queue holds nothing, ready or unacked: every message was handled and acked."""
    vhost = quote(unquote(urlsplit(amqp_url).path[1:]), safe="")

    async def empty() -> bool:
        async with httpx.AsyncClient(auth=(rabbit_server.user, rabbit_server.password)) as client:
            answer = await client.get(f"{rabbit_server.api_url}/queues/{vhost}/{name}")
            answer.raise_for_status()
            info = answer.json()
            return info.get("messages") == 0 and info.get("messages_unacknowledged", 0) == 0

    await wait_for(empty, interval_s=0.5, what=f"the {name} queue to be empty")


def api(stack: Stack) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=f"{stack.url('payroll-worker')}/internal/companies/{COMPANY}",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )


DEC_1 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


async def test_a_redelivered_completion_adds_no_line(
    broker: AbstractRobustConnection,
    deductions: Deductions,
    stack: Stack,
    rabbit_server: RabbitServer,
    amqp_url: str,
) -> None:
    order = snapshot()
    await publish(broker, completed(order, DEC_1), times=3)
    [event] = await deductions.wait(1)
    assert event["type"] == "mport.payroll.deduction_recorded.v1"
    assert event["data"]["line"]["text"] == "Ekstra Data 15GB 01.12.2026"
    await drained(rabbit_server, amqp_url)
    [line] = await lines(stack)
    assert line["order_id"] == str(order.order_id)
    await asyncio.sleep(0.5)
    assert len(await deductions.collect()) == 1


async def test_events_out_of_order_and_a_closed_period(
    broker: AbstractRobustConnection,
    deductions: Deductions,
    stack: Stack,
    rabbit_server: RabbitServer,
    amqp_url: str,
) -> None:
    # A failure that overtakes its completion: nothing charged.
    lost = snapshot()
    await publish(broker, failed(lost, DEC_1))
    await recorded(stack, "SELECT count(*) FROM failed_orders WHERE order_id = $1", lost.order_id)
    await publish(broker, completed(lost, DEC_1))
    # An ending that overtakes its service's completion: the service starts ended.
    sky = snapshot(amount_ore=2_950, billing=Billing.MONTHLY, product_code="min_sky", product_name="Min Sky")
    ending = snapshot(amount_ore=0, action="delete", ends_order_id=sky.order_id, product_code="min_sky")
    await publish(broker, completed(ending, datetime(2026, 12, 20, tzinfo=UTC)))
    await recorded(stack, "SELECT count(*) FROM service_endings WHERE order_id = $1", sky.order_id)
    await publish(broker, completed(sky, DEC_1))
    await drained(rabbit_server, amqp_url)
    async with api(stack) as client:
        closed = await client.post("/periods/2026-12/close")
        assert closed.status_code == 200, closed.text
        assert closed.json()["recurring_lines_generated"] == 1  # Min Sky for December only
        assert (await client.post("/periods/2026-12/close")).json()["recurring_lines_generated"] == 0
        # December is closed: an Ekstra Data completed in December lands in January.
        late = snapshot()
        await publish(broker, completed(late, DEC_1))
        await deductions.wait(2)
        await drained(rabbit_server, amqp_url)
        assert (await client.post("/periods/2027-01/close")).json()["recurring_lines_generated"] == 0
        periods = {p["period"]: p for p in (await client.get("/periods")).json()}
        assert periods["2026-12"]["status"] == "closed"
        assert (periods["2027-01"]["lines"], periods["2027-01"]["total_ore"]) == (1, 4_900)
        json_file = await client.get("/periods/2027-01/export", params={"format": "json"})
        [exported] = json_file.json()["lines"]
        assert exported["order_id"] == str(late.order_id)
        assert exported["text"] == "Ekstra Data 15GB 01.12.2026 (overført fra 12.2026)"
        for fmt in ("visma", "tripletex"):
            first = await client.get("/periods/2027-01/export", params={"format": fmt})
            again = await client.get("/periods/2027-01/export", params={"format": fmt})
            assert first.content == again.content
            assert b"-49.00" in first.content
    rows = await lines(stack)
    assert sorted((r["kind"], r["period"], r["order_id"]) for r in rows) == sorted(
        [("monthly", "2026-12", str(sky.order_id)), ("one_off", "2027-01", str(late.order_id))]
    )
    assert [r["moved_from_period"] for r in rows if r["kind"] == "one_off"] == ["2026-12"]
    assert len(await deductions.collect()) == 2


async def test_a_worker_killed_mid_message_records_the_line_once(
    broker: AbstractRobustConnection,
    deductions: Deductions,
    stack: Stack,
    rabbit_server: RabbitServer,
    amqp_url: str,
) -> None:
    # Hold the company's row: the worker takes the message, writes its inbox row, then waits
    # for the lock inside its transaction, with the message unacked. Then it is killed.
    holder = await asyncpg.connect(pg_url(stack))
    await holder.execute("INSERT INTO payroll_companies (company_id) VALUES ($1)", str(COMPANY))
    transaction = holder.transaction()
    await transaction.start()
    await holder.execute("SELECT 1 FROM payroll_companies WHERE company_id = $1 FOR UPDATE", str(COMPANY))
    order = snapshot()
    await publish(broker, completed(order, DEC_1))

    async def waiting() -> bool:
        count: int = await holder.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        return count == 1

    await wait_for(waiting, what="the worker to wait for the company's lock mid-message")
    stack.kill("payroll-worker")
    await stack.processes["payroll-worker"].wait()
    await transaction.rollback()
    await holder.close()
    assert await lines(stack) == []
    await stack.start("payroll-worker")  # the unacked message is redelivered to it
    await deductions.wait(1)
    await drained(rabbit_server, amqp_url)
    [line] = await lines(stack)
    assert line["order_id"] == str(order.order_id)
    assert len(await deductions.collect()) == 1
