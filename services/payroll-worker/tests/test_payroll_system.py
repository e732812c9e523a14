"""The payroll system's side, end to end on real RabbitMQ: the example consumer
(examples/payroll_consumer.py), signed in as a user with the payroll-system user's permissions,
gets every deduction the worker records, once per line even when a message comes again, and may
touch nothing but its own queue."""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import aio_pika
import httpx
import pytest
from aio_pika.abc import AbstractRobustConnection
from aiormq.exceptions import ChannelAccessRefused
from mport_shared.devstack import Stack
from mport_shared.messaging.topology import PAYROLL_SYSTEM, external_user_permissions
from mport_shared.testing import RabbitServer, wait_for

from .conftest import completed, failed, snapshot
from .test_worker import DEC_1, broker, drained, publish, stack  # noqa: F401 - fixtures

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "payroll_consumer.py"


@pytest.fixture
async def payroll_system_url(rabbit_server: RabbitServer, amqp_url: str) -> AsyncIterator[str]:
    """A user of this test's own with exactly the permissions the definitions give payroll-system
    (users are server-wide; the name is not shared with other runs)."""
    vhost = unquote(urlsplit(amqp_url).path[1:])
    name, password = f"payroll-system-{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(16)
    permissions = external_user_permissions(PAYROLL_SYSTEM, vhost=vhost)
    async with httpx.AsyncClient(auth=(rabbit_server.user, rabbit_server.password)) as api:
        (
            await api.put(f"{rabbit_server.api_url}/users/{name}", json={"password": password, "tags": ""})
        ).raise_for_status()
        (
            await api.put(
                f"{rabbit_server.api_url}/permissions/{quote(vhost, safe='')}/{name}",
                json={k: permissions[k] for k in ("configure", "write", "read")},
            )
        ).raise_for_status()
        parts = urlsplit(amqp_url)
        yield urlunsplit(parts._replace(netloc=f"{name}:{password}@{parts.hostname}:{parts.port or 5672}"))
        await api.delete(f"{rabbit_server.api_url}/users/{name}")


def rows(database: Path) -> list[tuple[str, int, str | None]]:
    if not database.exists():
        return []
    with sqlite3.connect(database) as db:
        try:
            return db.execute(
                "SELECT line_id, amount_ore, reverses_line_id FROM deductions ORDER BY amount_ore"
            ).fetchall()
        except sqlite3.OperationalError:
            return []


async def test_the_example_consumer_gets_each_line_once_and_leaves_its_queue_empty(
    broker: AbstractRobustConnection,  # noqa: F811
    stack: Stack,  # noqa: F811
    payroll_system_url: str,
    rabbit_server: RabbitServer,
    amqp_url: str,
    tmp_path: Path,
) -> None:
    database = tmp_path / "payroll.db"
    output = (tmp_path / "consumer.log").open("wb")
    consumer = await asyncio.create_subprocess_exec(
        sys.executable, str(EXAMPLE), payroll_system_url, str(database), stdout=output, stderr=output
    )
    try:
        order, mistaken = snapshot(), snapshot(amount_ore=12_900, product_name="Datakort")
        await publish(broker, completed(order, DEC_1), times=2)
        await publish(broker, completed(mistaken, DEC_1))

        async def two() -> bool:
            return len(rows(database)) == 2

        # The failure only after the charge is recorded: handled at once, it would win, and
        # nothing would be charged (what a failure that overtakes its completion must do).
        await wait_for(two, timeout_s=30, what="the example consumer to record two lines")
        await publish(broker, failed(mistaken, DEC_1))

        async def three() -> bool:
            return len(rows(database)) == 3

        await wait_for(three, timeout_s=30, what="the example consumer to record three lines")
        # The same deduction event again (a relay that died before marking it sent): no new row.
        channel = await broker.channel()
        copied = await channel.declare_queue(
            "payroll-copy", durable=True, arguments={"x-queue-type": "quorum"}
        )
        await copied.bind("mport.events", routing_key="mport.payroll.#")
        await publish(broker, completed(snapshot(), DEC_1))
        message = await _get(copied)
        await channel.default_exchange.publish(
            aio_pika.Message(message.body, message_id=message.message_id, type=message.type),
            routing_key="payroll-system",
        )

        async def four() -> bool:
            return len(rows(database)) == 4

        await wait_for(four, timeout_s=30, what="the fourth line")
        await drained(rabbit_server, amqp_url, "payroll-system")
        await asyncio.sleep(0.5)
        found = rows(database)
        assert len(found) == 4
        assert [amount for _, amount, _ in found] == [-12_900, 4_900, 4_900, 12_900]
        [reversal] = [r for r in found if r[2] is not None]
        assert reversal[2] in {line_id for line_id, _, _ in found}
        await drained(rabbit_server, amqp_url, "payroll-worker")
    finally:
        if consumer.returncode is None:
            consumer.terminate()
        await consumer.wait()
        output.close()
        print((tmp_path / "consumer.log").read_text())


async def _publish_an_order(channel: aio_pika.abc.AbstractChannel) -> None:
    exchange = await channel.get_exchange("mport.events", ensure=False)
    await exchange.publish(aio_pika.Message(b"{}"), routing_key="mport.order.completed.v1")
    await channel.get_queue("payroll-system", ensure=True)  # the refusal has arrived by now


async def _get(queue: aio_pika.abc.AbstractQueue) -> aio_pika.abc.AbstractIncomingMessage:
    for _ in range(200):
        message = await queue.get(no_ack=True, fail=False)
        if message is not None:
            return message
        await asyncio.sleep(0.1)
    raise AssertionError("no deduction event")


async def test_the_payroll_system_user_may_only_consume_its_own_queue(
    broker: AbstractRobustConnection,  # noqa: F811 - the queues declared
    payroll_system_url: str,
) -> None:
    connection = await aio_pika.connect(payroll_system_url)
    try:
        channel = await connection.channel()
        with pytest.raises(ChannelAccessRefused):  # configure: nothing
            await channel.declare_queue("sneaky", durable=True)
        with pytest.raises(ChannelAccessRefused):  # write: nothing
            await _publish_an_order(await connection.channel())
        other = await (await connection.channel()).get_queue("payroll-worker", ensure=False)
        with pytest.raises(ChannelAccessRefused):  # read: only its own queue
            await other.get(fail=False)
        channel = await connection.channel()
        queue = await channel.get_queue("payroll-system", ensure=False)
        await queue.get(fail=False)  # its own queue: allowed
    finally:
        await connection.close()
