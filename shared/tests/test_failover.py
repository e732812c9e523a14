"""A connection over several broker addresses, against a real RabbitMQ reached through TCP proxies
standing in for a cluster's nodes: it starts on the first that answers and, when its node goes
away, carries on over another, with its consumer and publisher confirms working as before."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from urllib.parse import urlsplit

import aio_pika
import pytest
from aio_pika.abc import AbstractRobustConnection
from mport_shared.devstack import free_port
from mport_shared.events import Envelope, EventPayload, OrderSubmitted, envelop
from mport_shared.messaging.connection import confirming_channel, connect
from mport_shared.messaging.consumer import Consumer
from mport_shared.messaging.publisher import OutgoingMessage, Publisher
from mport_shared.messaging.topology import ServiceQueue, declare_exchange
from mport_shared.testing import TcpProxy, wait_for

pytestmark = pytest.mark.integration

QUEUE = ServiceQueue("it-failover", (OrderSubmitted.event_type,))


@pytest.fixture
async def nodes(amqp_url: str) -> AsyncIterator[tuple[TcpProxy, TcpProxy]]:
    """Two ways to the broker, as two nodes of one cluster would be."""
    parts = urlsplit(amqp_url)
    proxies = (TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5672) for _ in range(2))
    first, second = proxies
    await first.start()
    await second.start()
    yield first, second
    await first.cut()
    await second.cut()


def _listing(amqp_url: str, *ports: int) -> str:
    """AMQP_URL with the hosts listed: amqp://guest:guest@127.0.0.1:p1,127.0.0.1:p2/vhost."""
    parts = urlsplit(amqp_url)
    hosts = ",".join(f"127.0.0.1:{port}" for port in ports)
    return f"{parts.scheme}://{parts.username}:{parts.password}@{hosts}{parts.path}"


def _now() -> datetime:
    return datetime.now(UTC)


def _event() -> Envelope[EventPayload]:
    payload = OrderSubmitted(order_id=uuid.uuid4(), carrier_order_id="c-1", submitted_at=datetime.now(UTC))
    return envelop(payload, source="test", correlation_id=str(payload.order_id))  # type: ignore[return-value]


async def test_it_connects_to_the_first_address_that_answers(
    amqp_url: str, nodes: tuple[TcpProxy, TcpProxy]
) -> None:
    _, second = nodes
    nobody = free_port()  # nothing listens there: a node that is down
    connection = await connect(_listing(amqp_url, nobody, second.port), name="test-first-answering")
    try:
        assert connection.url.port == second.port
        channel = await confirming_channel(connection)
        await channel.declare_queue("it-failover-probe", auto_delete=True)
    finally:
        await connection.close()


async def test_none_answering_is_the_last_nodes_connection_error(amqp_url: str) -> None:
    with pytest.raises(ConnectionError):
        await connect(_listing(amqp_url, free_port(), free_port()), name="test-nobody")


async def test_when_its_node_goes_the_connection_moves_on_and_keeps_consuming_and_confirming(
    amqp_url: str, nodes: tuple[TcpProxy, TcpProxy]
) -> None:
    first, second = nodes
    connection = await connect(_listing(amqp_url, first.port, second.port), name="test-failover")
    handled: list[str] = []

    async def handler(envelope: Envelope[EventPayload]) -> None:
        handled.append(envelope.id)

    consumer = Consumer(
        channel=await confirming_channel(connection), queue=QUEUE,
        handlers={OrderSubmitted.event_type: handler}, retry_delays_ms=(100,), prefetch=4,
    )  # fmt: skip
    publish_channel = await confirming_channel(connection)
    publisher = Publisher(await declare_exchange(publish_channel), publish_channel)
    try:
        await consumer.start()
        before = _event()
        assert await publisher.publish_many([OutgoingMessage.from_envelope(before)], now=_now()) == [None]
        await wait_for(lambda: _has(handled, before.id), timeout_s=10, what="the message before the cut")
        assert connection.url.port == first.port

        await first.cut()  # this node is gone, and stays gone

        after = _event()

        async def published() -> bool:
            # What the outbox relay does: try, and on a lost connection try again shortly.
            try:
                results = await publisher.publish_many([OutgoingMessage.from_envelope(after)], now=_now())
            except (aio_pika.exceptions.AMQPError, ConnectionError, RuntimeError):
                return False
            return results == [None]

        await wait_for(
            published, timeout_s=30, interval_s=0.5, what="a confirmed publish over the other node"
        )
        assert connection.url.port == second.port
        await wait_for(
            lambda: _has(handled, after.id), timeout_s=15, what="the consumer, restored, to get the message"
        )
    finally:
        await consumer.stop(grace_s=1)
        await connection.close()


async def _has(handled: list[str], message_id: str) -> bool:
    return message_id in handled


async def test_a_connection_with_one_address_still_reconnects_to_it(
    amqp_url: str, nodes: tuple[TcpProxy, TcpProxy]
) -> None:
    first, _ = nodes
    connection: AbstractRobustConnection = await connect(_listing(amqp_url, first.port), name="test-single")
    try:
        channel = await confirming_channel(connection)
        await first.cut()
        await asyncio.sleep(0.2)
        await first.restore()

        async def declared() -> bool:
            try:
                await channel.declare_queue("it-failover-single", auto_delete=True)
            except (aio_pika.exceptions.AMQPError, ConnectionError, RuntimeError):
                return False
            return True

        await wait_for(declared, timeout_s=20, interval_s=0.3, what="the reconnection to the one node")
        assert connection.url.port == first.port
    finally:
        await connection.close()
