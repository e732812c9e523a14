"""The messaging guarantees against a real RabbitMQ (fresh vhost) and PostgreSQL (fresh database)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import aio_pika
import pytest
from aio_pika.abc import AbstractRobustConnection
from mport_shared.db import create_engine, session_factory
from mport_shared.events import Envelope, EventPayload, OrderSubmitted, VerificationRequested, envelop
from mport_shared.messaging.connection import confirming_channel, connect
from mport_shared.messaging.consumer import (
    ATTEMPTS_HEADER,
    ORIGINAL_ROUTING_KEY_HEADER,
    REASON_HEADER,
    Consumer,
)
from mport_shared.messaging.outbox import OutboxRelay, add_to_outbox
from mport_shared.messaging.publisher import Publisher
from mport_shared.messaging.tables import MessagingTables, messaging_tables
from mport_shared.messaging.topology import EXCHANGE, ServiceQueue, declare_all, declare_exchange
from mport_shared.testing import MakeDatabase, TcpProxy, proxied_url, wait_for
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import MetaData, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

pytestmark = pytest.mark.integration

PROBE = ServiceQueue("probe", (OrderSubmitted.event_type,))


@dataclass
class Db:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    tables: MessagingTables

    async def unsent(self) -> int:
        async with self.sessions() as s:
            outbox = self.tables.outbox
            return int(await s.scalar(select(func.count()).where(outbox.c.sent_at.is_(None))) or 0)


@pytest.fixture
async def db(make_database: MakeDatabase) -> AsyncIterator[Db]:
    metadata = MetaData()
    tables = messaging_tables(metadata)
    engine = create_engine(await make_database(None))
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield Db(engine, session_factory(engine), tables)
    await engine.dispose()


@pytest.fixture
async def broker(amqp_url: str) -> AsyncIterator[AbstractRobustConnection]:
    connection = await connect(amqp_url, name="test")
    channel = await confirming_channel(connection)
    await declare_all(channel)
    yield connection
    await connection.close()


def _event(order_id: uuid.UUID | None = None) -> Envelope[EventPayload]:
    oid = order_id or uuid.uuid4()
    payload = OrderSubmitted(order_id=oid, carrier_order_id="c", submitted_at=datetime.now(UTC))
    return envelop(payload, source="/test", correlation_id=str(oid))  # type: ignore[return-value]


async def _relay(db: Db, connection: AbstractRobustConnection, **kwargs: float) -> OutboxRelay:
    channel = await confirming_channel(connection)
    exchange = await declare_exchange(channel)
    return OutboxRelay(
        service="test",
        sessions=db.sessions,
        outbox=db.tables.outbox,
        publisher=Publisher(exchange, channel),
        **kwargs,
    )  # type: ignore[arg-type]


async def _drain(
    connection: AbstractRobustConnection, queue_name: str
) -> list[aio_pika.abc.AbstractIncomingMessage]:
    channel = await connection.channel()
    queue = await channel.get_queue(queue_name, ensure=False)
    messages = []
    while (message := await queue.get(no_ack=True, fail=False)) is not None:
        messages.append(message)
    await channel.close()
    return messages


async def _bind_probe(connection: AbstractRobustConnection) -> None:
    channel = await connection.channel()
    queue = await channel.declare_queue(PROBE.name, durable=True, arguments={"x-queue-type": "quorum"})
    await queue.bind(EXCHANGE, routing_key=OrderSubmitted.event_type)
    await channel.close()


async def test_a_rolled_back_transaction_publishes_nothing(db: Db, broker: AbstractRobustConnection) -> None:
    await _bind_probe(broker)
    relay = await _relay(db, broker)
    async with db.sessions() as session, session.begin():
        await add_to_outbox(session, db.tables.outbox, _event())
        await session.rollback()
    assert await relay.publish_pending() == 0
    assert await _drain(broker, PROBE.name) == []

    committed = _event()
    async with db.sessions() as session, session.begin():
        await add_to_outbox(session, db.tables.outbox, committed)
    assert await relay.publish_pending() == 1
    assert [m.message_id for m in await _drain(broker, PROBE.name)] == [committed.id]
    assert await db.unsent() == 0


async def test_the_relay_wakes_on_commit_and_publishes_in_commit_order(
    db: Db, broker: AbstractRobustConnection
) -> None:
    await _bind_probe(broker)
    # A long poll interval: only the commit hook can make this fast.
    relay = await _relay(db, broker, poll_interval_s=60.0)
    relay.start()
    events = [_event() for _ in range(30)]
    for event in events:
        async with db.sessions() as session, session.begin():
            await add_to_outbox(session, db.tables.outbox, event)

    async def all_sent() -> bool:
        return await db.unsent() == 0

    await wait_for(all_sent, timeout_s=5, what="the relay to publish all rows")
    await relay.stop()
    assert [m.message_id for m in await _drain(broker, PROBE.name)] == [e.id for e in events]


async def test_an_unroutable_event_is_an_error_and_stays_in_the_outbox(
    db: Db, broker: AbstractRobustConnection
) -> None:
    relay = await _relay(db, broker)
    async with db.sessions() as session, session.begin():
        # A routing key no queue is bound to, as after a typo or a missing binding.
        await session.execute(
            insert(db.tables.outbox).values(
                message_id=str(uuid.uuid4()), routing_key="mport.nobody.listens.v1", body="{}", headers={}
            )
        )
    with pytest.raises(aio_pika.exceptions.DeliveryError):
        await relay.publish_pending()
    assert await db.unsent() == 1


async def test_an_event_committed_while_the_broker_is_unreachable_is_published_when_it_returns(
    db: Db, broker: AbstractRobustConnection, amqp_url: str
) -> None:
    await _bind_probe(broker)
    parts = urlsplit(amqp_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5672)
    await proxy.start()
    relay_connection = await connect(proxied_url(amqp_url, proxy), name="relay-behind-proxy")
    relay = await _relay(db, relay_connection, poll_interval_s=0.2, retry_interval_s=0.2)
    relay.start()
    try:
        await proxy.cut()
        event = _event()
        async with db.sessions() as session, session.begin():
            await add_to_outbox(session, db.tables.outbox, event)
        await asyncio.sleep(1.0)  # the relay tries, and fails, while the broker is away
        assert await db.unsent() == 1
        await proxy.restore()

        async def sent() -> bool:
            return await db.unsent() == 0

        await wait_for(sent, timeout_s=20, what="the relay to publish after the broker returned")
        assert [m.message_id for m in await _drain(broker, PROBE.name)] == [event.id]
    finally:
        await relay.stop()
        await relay_connection.close()
        await proxy.cut()


async def _publish_raw(
    connection: AbstractRobustConnection, body: bytes, routing_key: str, message_id: str | None = None
) -> None:
    channel = await confirming_channel(connection)
    exchange = await declare_exchange(channel)
    await exchange.publish(
        aio_pika.Message(
            body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT, type=routing_key, message_id=message_id
        ),
        routing_key=routing_key,
    )
    await channel.close()


async def test_a_poison_message_is_dead_lettered_after_its_retries_while_good_ones_flow(
    broker: AbstractRobustConnection,
) -> None:
    poison_id = uuid.uuid4()
    calls: dict[uuid.UUID, int] = {}
    handled_good: list[uuid.UUID] = []

    async def handler(envelope: Envelope[EventPayload]) -> None:
        assert isinstance(envelope.data, OrderSubmitted)
        order_id = envelope.data.order_id
        calls[order_id] = calls.get(order_id, 0) + 1
        if order_id == poison_id:
            raise RuntimeError("carrier said something we cannot parse")
        handled_good.append(order_id)

    queue = ServiceQueue("it-poison", (OrderSubmitted.event_type,))
    # prefetch=1: if a failing message held its place, nothing behind it could be handled.
    consumer = Consumer(
        channel=await confirming_channel(broker), queue=queue,
        handlers={OrderSubmitted.event_type: handler}, retry_delays_ms=(300, 600), prefetch=1,
    )  # fmt: skip
    await consumer.start()
    good = [uuid.uuid4() for _ in range(5)]
    for order_id in [poison_id, *good]:
        event = _event(order_id)
        await _publish_raw(broker, event.model_dump_json().encode(), event.type)

    async def good_done() -> bool:
        return len(handled_good) == len(good)

    await wait_for(good_done, timeout_s=5, what="the good messages")
    assert await _drain(broker, queue.dead_letter) == [], "good messages waited for the poison one"

    dead: list[aio_pika.abc.AbstractIncomingMessage] = []

    async def dead_lettered() -> bool:
        dead.extend(await _drain(broker, queue.dead_letter))
        return len(dead) == 1

    await wait_for(dead_lettered, timeout_s=10, what="the poison message in the dead-letter queue")
    await consumer.stop(grace_s=1)
    headers = dead[0].headers
    assert "RuntimeError: carrier said something we cannot parse" in str(headers[REASON_HEADER])
    assert headers[ATTEMPTS_HEADER] == 3
    assert headers[ORIGINAL_ROUTING_KEY_HEADER] == OrderSubmitted.event_type
    assert calls[poison_id] == 3
    assert sorted(handled_good) == sorted(good)


async def test_a_malformed_message_is_dead_lettered_at_once_with_the_reason(
    broker: AbstractRobustConnection,
) -> None:
    handled: list[str] = []

    async def handler(envelope: Envelope[EventPayload]) -> None:
        handled.append(envelope.id)

    queue = ServiceQueue("it-malformed", (OrderSubmitted.event_type,))
    consumer = Consumer(
        channel=await confirming_channel(broker), queue=queue,
        handlers={OrderSubmitted.event_type: handler}, retry_delays_ms=(100,), prefetch=4,
    )  # fmt: skip
    await consumer.start()
    await _publish_raw(broker, b"{not json", OrderSubmitted.event_type)
    dead: list[aio_pika.abc.AbstractIncomingMessage] = []

    async def dead_lettered() -> bool:
        dead.extend(await _drain(broker, queue.dead_letter))
        return bool(dead)

    await wait_for(dead_lettered, timeout_s=5, what="the malformed message in the dead-letter queue")
    await consumer.stop(grace_s=1)
    assert str(dead[0].headers[REASON_HEADER]).startswith("invalid message:")
    assert dead[0].headers[ATTEMPTS_HEADER] == 1
    assert dead[0].body == b"{not json"
    assert handled == []


async def test_an_invalid_message_is_dead_lettered_naming_its_fields_never_their_values(
    broker: AbstractRobustConnection,
) -> None:
    """A VerificationRequested whose code is of the wrong type: the reason (a header, and the log
    line) says which field and why, never the code."""
    queue = ServiceQueue("it-invalid-code", (VerificationRequested.event_type,))
    consumer = Consumer(
        channel=await confirming_channel(broker), queue=queue,
        handlers={VerificationRequested.event_type: lambda _: asyncio.sleep(0)}, retry_delays_ms=(100,),
        prefetch=4,
    )  # fmt: skip
    await consumer.start()
    valid = VerificationRequested(
        verification_id=uuid.uuid4(), company_id=uuid.uuid4(), employee_id=uuid.uuid4(),
        msisdn="4748123456", code="493817", expires_at=datetime.now(UTC),
    )  # fmt: skip
    body = envelop(valid, source="/test", correlation_id="c").model_dump(mode="json")
    body["data"]["code"] = 493817  # a number, not the six-digit string
    body["data"]["msisdn"] = "not a number"
    await _publish_raw(broker, json.dumps(body).encode(), VerificationRequested.event_type)
    dead: list[aio_pika.abc.AbstractIncomingMessage] = []

    async def dead_lettered() -> bool:
        dead.extend(await _drain(broker, queue.dead_letter))
        return bool(dead)

    await wait_for(dead_lettered, timeout_s=5, what="the invalid message in the dead-letter queue")
    await consumer.stop(grace_s=1)
    reason = str(dead[0].headers[REASON_HEADER])
    assert reason.startswith("invalid message: ")
    assert "data.code: Input should be a valid string" in reason
    assert "data.msisdn: String should match pattern" in reason
    assert "493817" not in reason
    assert "not a number" not in reason


async def test_shutdown_finishes_the_message_in_hand_and_a_crash_loses_nothing(
    broker: AbstractRobustConnection, amqp_url: str
) -> None:
    started = asyncio.Event()
    release = asyncio.Event()
    finished: list[str] = []

    async def slow(envelope: Envelope[EventPayload]) -> None:
        started.set()
        await release.wait()
        finished.append(envelope.id)

    queue = ServiceQueue("it-shutdown", (OrderSubmitted.event_type,))

    async def consumer_on(connection: AbstractRobustConnection) -> Consumer:
        consumer = Consumer(
            channel=await confirming_channel(connection), queue=queue,
            handlers={OrderSubmitted.event_type: slow}, retry_delays_ms=(100,), prefetch=4,
        )  # fmt: skip
        await consumer.start()
        return consumer

    # Graceful: stop() waits for the handler, which acks; nothing is redelivered.
    first = await consumer_on(broker)
    event = _event()
    await _publish_raw(broker, event.model_dump_json().encode(), event.type)
    await asyncio.wait_for(started.wait(), 5)
    stopping = asyncio.create_task(first.stop(grace_s=5))
    await asyncio.sleep(0.2)
    assert not stopping.done(), "stop() returned while a message was still in hand"
    release.set()
    await stopping
    assert finished == [event.id]

    # Crash: the connection dies mid-message; the broker hands the message to the next consumer.
    release.clear()
    started.clear()
    crashing = await connect(amqp_url, name="crashing")
    await consumer_on(crashing)
    second = _event()
    await _publish_raw(broker, second.model_dump_json().encode(), second.type)
    await asyncio.wait_for(started.wait(), 5)
    await crashing.close()  # as if the process died: the message was never acked
    started.clear()
    release.set()
    survivor = await consumer_on(broker)

    async def redelivered() -> bool:
        return finished.count(second.id) >= 1

    await wait_for(redelivered, timeout_s=10, what="the unacked message to be redelivered")
    await survivor.stop(grace_s=1)


async def test_an_operator_lists_replays_and_purges_dead_letters(
    broker: AbstractRobustConnection, amqp_url: str
) -> None:
    from mport_shared.ops import dead_letters as ops

    broken = True
    handled: list[uuid.UUID] = []

    async def handler(envelope: Envelope[EventPayload]) -> None:
        assert isinstance(envelope.data, OrderSubmitted)
        if broken:
            raise ConnectionError("downstream is down")
        handled.append(envelope.data.order_id)

    queue = ServiceQueue("portal-api", (OrderSubmitted.event_type,))  # a real service queue, for ops
    consumer = Consumer(
        channel=await confirming_channel(broker), queue=queue,
        handlers={OrderSubmitted.event_type: handler}, retry_delays_ms=(50,), prefetch=4,
    )  # fmt: skip
    await consumer.start()
    first, second = _event(), _event()
    for event in (first, second):
        await _publish_raw(broker, event.model_dump_json().encode(), event.type, event.id)

    async def both_dead() -> bool:
        return len(await ops.dead_letters(amqp_url, [queue])) == 2

    await wait_for(both_dead, timeout_s=10, what="two dead letters")
    letters = {d.message_id: d for d in await ops.dead_letters(amqp_url, [queue])}
    assert letters[first.id].reason == "ConnectionError: downstream is down"
    assert letters[first.id].attempts == 2
    assert letters[first.id].event_type == OrderSubmitted.event_type

    broken = False
    assert await ops.replay(amqp_url, [queue], ops.Selection(ids=frozenset({first.id}))) == 1

    async def replayed() -> bool:
        return first.data.order_id in handled  # type: ignore[attr-defined]

    await wait_for(replayed, timeout_s=10, what="the replayed message to be handled")
    assert [d.message_id for d in await ops.dead_letters(amqp_url, [queue])] == [second.id]
    assert await ops.purge(amqp_url, [queue], ops.ALL) == 1
    assert await ops.dead_letters(amqp_url, [queue]) == []
    assert second.data.order_id not in handled  # type: ignore[attr-defined]
    await consumer.stop(grace_s=1)


class _WhileOn(SpanProcessor):
    """Passes finished spans on only while a test listens (the tracer provider is the process's)."""

    def __init__(self, inner: SpanProcessor) -> None:
        self.inner = inner
        self.on = False

    def on_start(self, span: object, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        if self.on:
            self.inner.on_end(span)


_LISTENER: _WhileOn | None = None


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """An in-memory exporter behind the process's tracer provider (set once per process)."""
    global _LISTENER
    exporter = InMemorySpanExporter()
    if _LISTENER is None:
        provider = trace.get_tracer_provider()
        if not isinstance(provider, TracerProvider):
            provider = TracerProvider()
            trace.set_tracer_provider(provider)
        _LISTENER = _WhileOn(SimpleSpanProcessor(exporter))
        provider.add_span_processor(_LISTENER)
    _LISTENER.inner = SimpleSpanProcessor(exporter)
    _LISTENER.on = True
    yield exporter
    _LISTENER.on = False


async def test_a_consumers_span_continues_the_outbox_write_of_its_event(
    db: Db, broker: AbstractRobustConnection, spans: InMemorySpanExporter
) -> None:
    """The trace of one event in one process, with an in-memory exporter; tests/e2e/test_trace.py
    follows an order across the real service processes."""
    queue = ServiceQueue("it-traced", (OrderSubmitted.event_type,))
    handled: list[str] = []

    async def handler(envelope: Envelope[EventPayload]) -> None:
        handled.append(envelope.id)

    consumer = Consumer(
        channel=await confirming_channel(broker), queue=queue,
        handlers={OrderSubmitted.event_type: handler}, retry_delays_ms=(300,), prefetch=1,
    )  # fmt: skip
    await consumer.start()
    relay = await _relay(db, broker)
    with trace.get_tracer("test").start_as_current_span("request"):
        event = _event()
        async with db.sessions() as session, session.begin():
            await add_to_outbox(session, db.tables.outbox, event)
    assert await relay.publish_pending() == 1

    async def done() -> bool:
        return handled == [event.id]

    await wait_for(done, timeout_s=10, what="the event to be handled")
    await consumer.stop(grace_s=1)
    finished = {s.name: s for s in spans.get_finished_spans()}
    request, created = finished["request"], finished[f"create {event.type}"]
    published, processed = finished[f"publish {event.type}"], finished[f"process {event.type}"]
    handling = finished[f"handle {event.type}"]

    def parent(span: ReadableSpan) -> int | None:
        return span.parent.span_id if span.parent is not None else None

    assert parent(created) == request.context.span_id
    assert parent(published) == created.context.span_id
    # Across the broker: the consumer's span is a child of the outbox write's, from the traceparent.
    assert parent(processed) == created.context.span_id
    assert processed.parent is not None
    assert processed.parent.is_remote
    assert parent(handling) == processed.context.span_id
    assert {s.context.trace_id for s in (request, created, published, processed, handling)} == {
        request.context.trace_id
    }
    assert processed.kind is trace.SpanKind.CONSUMER
    assert (processed.attributes or {})["messaging.message.id"] == event.id
