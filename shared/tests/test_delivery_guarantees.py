"""Delivery guarantees that only show when they break: inbox dedup, safe forwarding, growing
retry delays and one relay per database, against a real RabbitMQ and PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from mport_shared.db import create_engine, session_factory
from mport_shared.events import Envelope, EventPayload, OrderSubmitted, envelop
from mport_shared.messaging.connection import confirming_channel, connect
from mport_shared.messaging.consumer import ATTEMPT_HEADER, Consumer, Handler
from mport_shared.messaging.inbox import claim_message
from mport_shared.messaging.outbox import OutboxRelay, add_to_outbox
from mport_shared.messaging.publisher import Publisher
from mport_shared.messaging.tables import MessagingTables, messaging_tables
from mport_shared.messaging.topology import ServiceQueue, declare_exchange
from mport_shared.testing import MakeDatabase, wait_for
from sqlalchemy import Column, MetaData, String, Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

pytestmark = pytest.mark.integration


@dataclass
class Db:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    tables: MessagingTables
    effects: Table

    async def count(self, table: Table) -> int:
        async with self.sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(table)) or 0)


@pytest.fixture
async def db(make_database: MakeDatabase) -> AsyncIterator[Db]:
    """A fresh PostgreSQL database with the outbox, the inbox and an effects table."""
    metadata = MetaData()
    tables = messaging_tables(metadata)
    # What a handler does to the world, once per message if the inbox works.
    effects = Table("effects", metadata, Column("message_id", String(64), nullable=False))
    engine = create_engine(await make_database(None))
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield Db(engine, session_factory(engine), tables, effects)
    await engine.dispose()


@pytest.fixture
async def broker(amqp_url: str) -> AsyncIterator[AbstractRobustConnection]:
    connection = await connect(amqp_url, name="test")
    yield connection
    await connection.close()


def _event() -> Envelope[EventPayload]:
    oid = uuid.uuid4()
    payload = OrderSubmitted(order_id=oid, carrier_order_id="c", submitted_at=datetime.now(UTC))
    return envelop(payload, source="/test", correlation_id=str(oid))


async def _start_consumer(
    connection: AbstractRobustConnection,
    queue: ServiceQueue,
    handler: Handler,
    *,
    retry_delays_ms: tuple[int, ...],
    prefetch: int = 4,
) -> Consumer:
    consumer = Consumer(
        channel=await confirming_channel(connection),
        queue=queue,
        handlers={OrderSubmitted.event_type: handler},
        retry_delays_ms=retry_delays_ms,
        prefetch=prefetch,
    )
    await consumer.start()
    return consumer


async def _publish(connection: AbstractRobustConnection, event: Envelope[EventPayload]) -> None:
    channel = await confirming_channel(connection)
    exchange = await declare_exchange(channel)
    await exchange.publish(
        aio_pika.Message(
            event.model_dump_json().encode(),
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            type=event.type,
            message_id=event.id,
        ),
        routing_key=event.type,
    )
    await channel.close()


async def _drain(connection: AbstractRobustConnection, queue_name: str) -> list[AbstractIncomingMessage]:
    channel = await connection.channel()
    queue = await channel.get_queue(queue_name, ensure=False)
    messages = []
    while (message := await queue.get(no_ack=True, fail=False)) is not None:
        messages.append(message)
    await channel.close()
    return messages


async def test_a_message_delivered_twice_has_its_effect_once(
    db: Db, broker: AbstractRobustConnection
) -> None:
    queue = ServiceQueue("it-inbox", (OrderSubmitted.event_type,))
    handled: list[str] = []

    async def handler(envelope: Envelope[EventPayload]) -> None:
        async with db.sessions() as session, session.begin():
            if await claim_message(session, db.tables.inbox, consumer=queue.name, message_id=envelope.id):
                await session.execute(insert(db.effects).values(message_id=envelope.id))
        handled.append(envelope.id)

    # prefetch 4: the two copies may be handled at the same time, as after a redelivery race.
    consumer = await _start_consumer(broker, queue, handler, retry_delays_ms=(100,))
    event = _event()
    await _publish(broker, event)
    await _publish(broker, event)

    async def both_handled() -> bool:
        return handled.count(event.id) == 2

    await wait_for(both_handled, timeout_s=5, what="both deliveries to be handled")
    await consumer.stop(grace_s=1)
    assert await db.count(db.effects) == 1
    assert await db.count(db.tables.inbox) == 1


async def test_a_failed_message_whose_retry_copy_is_not_confirmed_stays_on_the_work_queue(
    broker: AbstractRobustConnection,
) -> None:
    queue = ServiceQueue("it-forward", (OrderSubmitted.event_type,))
    calls: list[str] = []

    async def handler(envelope: Envelope[EventPayload]) -> None:
        calls.append(envelope.id)
        if len(calls) == 1:
            # The retry queue vanishes (an operator, a broker restore without it): the consumer's
            # mandatory copy comes back unroutable and must not cost us the original.
            channel = await broker.channel()
            await channel.queue_delete(queue.retry(60_000))
            await channel.close()
            raise ConnectionError("downstream is down")

    consumer = await _start_consumer(broker, queue, handler, retry_delays_ms=(60_000,), prefetch=1)
    event = _event()
    await _publish(broker, event)

    # Only the original can bring the message back: its copy had nowhere to go.
    async def handled_again() -> bool:
        return len(calls) >= 2

    await wait_for(handled_again, timeout_s=5, what="the original to be redelivered after the failed forward")
    await consumer.stop(grace_s=1)
    assert calls == [event.id, event.id]
    assert await _drain(broker, queue.name) == []  # the second attempt succeeded and was acked
    assert await _drain(broker, queue.dead_letter) == []


async def test_each_retry_waits_longer_than_the_one_before(broker: AbstractRobustConnection) -> None:
    delays_ms = (200, 600, 1500)
    tolerance_ms = 50
    queue = ServiceQueue("it-delays", (OrderSubmitted.event_type,))
    attempts: list[float] = []

    async def always_failing(envelope: Envelope[EventPayload]) -> None:
        attempts.append(time.monotonic())
        raise ConnectionError("still down")

    consumer = await _start_consumer(broker, queue, always_failing, retry_delays_ms=delays_ms)
    await _publish(broker, _event())
    dead: list[AbstractIncomingMessage] = []

    async def dead_lettered() -> bool:
        dead.extend(await _drain(broker, queue.dead_letter))
        return bool(dead)

    await wait_for(dead_lettered, timeout_s=10, what="the message in the dead-letter queue")
    await consumer.stop(grace_s=1)
    assert len(attempts) == len(delays_ms) + 1
    assert dead[0].headers[ATTEMPT_HEADER] == len(delays_ms) + 1
    gaps_ms = [(later - earlier) * 1000 for earlier, later in itertools.pairwise(attempts)]
    for gap, delay in zip(gaps_ms, delays_ms, strict=True):
        assert gap >= delay - tolerance_ms, f"gaps {gaps_ms} ms, configured delays {delays_ms} ms"
    assert all(a < b for a, b in itertools.pairwise(gaps_ms)), f"gaps {gaps_ms} ms do not grow"


async def test_two_relays_on_one_database_publish_each_row_once_in_commit_order(
    db: Db, broker: AbstractRobustConnection
) -> None:
    probe = ServiceQueue("it-two-relays", (OrderSubmitted.event_type,))
    channel = await broker.channel()
    queue = await channel.declare_queue(probe.name, durable=True, arguments={"x-queue-type": "quorum"})
    await queue.bind(await declare_exchange(channel), routing_key=OrderSubmitted.event_type)
    await channel.close()

    # Two processes of one service: each its own engine and relay; this test writes through the first.
    second_engine = create_engine(db.engine.url.render_as_string(hide_password=False))
    relays = []
    for sessions in (db.sessions, session_factory(second_engine)):
        publish_channel = await confirming_channel(broker)
        relays.append(
            OutboxRelay(
                service="test",
                sessions=sessions,
                outbox=db.tables.outbox,
                publisher=Publisher(await declare_exchange(publish_channel), publish_channel),
                batch_size=50,
                poll_interval_s=0.005,
            )
        )
    for relay in relays:
        relay.start()
    events = [_event() for _ in range(300)]
    try:
        for start in range(0, len(events), 10):
            async with db.sessions() as session, session.begin():
                for event in events[start : start + 10]:
                    await add_to_outbox(session, db.tables.outbox, event)
            await asyncio.sleep(0.005)

        async def all_sent() -> bool:
            async with db.sessions() as session:
                outbox = db.tables.outbox
                unsent = await session.scalar(select(func.count()).where(outbox.c.sent_at.is_(None)))
            return unsent == 0

        await wait_for(all_sent, timeout_s=10, what="the relays to publish every row")
    finally:
        for relay in relays:
            await relay.stop()  # after this, whatever either relay published is confirmed
        await second_engine.dispose()
    received = [m.message_id for m in await _drain(broker, probe.name)]
    duplicates = len(received) - len(set(received))
    assert duplicates == 0, f"{duplicates} messages were published more than once"
    assert received == [e.id for e in events]
