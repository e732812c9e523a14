"""`mport-ops dlq …` against a real RabbitMQ (a vhost of its own) and a consumer with a real inbox
on PostgreSQL: poison messages listed, grouped, shown redacted, replayed once, purged after asking."""

from __future__ import annotations

import asyncio
import io
import json
import os
import pty
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractRobustConnection
from mport_shared.db import create_engine, session_factory
from mport_shared.events import (
    Envelope,
    EventPayload,
    OrderSubmitted,
    VerificationRequested,
    envelop,
)
from mport_shared.messaging.connection import confirming_channel, connect
from mport_shared.messaging.consumer import Consumer, PermanentFailure
from mport_shared.messaging.inbox import claim_message
from mport_shared.messaging.tables import MessagingTables, messaging_tables
from mport_shared.messaging.topology import SMS_WORKER, ServiceQueue, declare_all, declare_exchange
from mport_shared.ops.cli import main
from mport_shared.testing import MakeDatabase, wait_for
from sqlalchemy import MetaData, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

pytestmark = pytest.mark.integration

QUEUE = ServiceQueue("portal-api", (OrderSubmitted.event_type,))  # a real service's queue, as ops knows it


@dataclass
class Worker:
    """A consumer of QUEUE whose handler claims each message in its inbox (PostgreSQL), in the
    transaction of its effect: `effects` counts what was really done, per order."""

    connection: AbstractRobustConnection
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    tables: MessagingTables
    broken: set[str] = field(default_factory=set)  # order ids that fail while listed
    permanent: set[str] = field(default_factory=set)
    effects: Counter[str] = field(default_factory=Counter)
    deliveries: Counter[str] = field(default_factory=Counter)
    consumer: Consumer | None = None

    async def handle(self, envelope: Envelope[EventPayload]) -> None:
        assert isinstance(envelope.data, OrderSubmitted)
        order = str(envelope.data.order_id)
        self.deliveries[order] += 1
        if order in self.permanent:
            raise PermanentFailure(f"order {order} is not ours")
        if order in self.broken:
            raise ConnectionError(f"carrier refused order {order}")
        async with self.sessions() as session, session.begin():
            if await claim_message(session, self.tables.inbox, consumer=QUEUE.name, message_id=envelope.id):
                self.effects[order] += 1

    async def start(self) -> None:
        self.consumer = Consumer(
            channel=await confirming_channel(self.connection), queue=QUEUE,
            handlers={OrderSubmitted.event_type: self.handle}, retry_delays_ms=(30,), prefetch=8,
        )  # fmt: skip
        await self.consumer.start()

    async def inbox_rows(self) -> int:
        async with self.sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(self.tables.inbox)) or 0)


@pytest.fixture
async def worker(amqp_url: str, make_database: MakeDatabase) -> AsyncIterator[Worker]:
    metadata = MetaData()
    tables = messaging_tables(metadata)
    engine = create_engine(await make_database(None))
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    connection = await connect(amqp_url, name="test")
    await declare_all(await confirming_channel(connection))
    w = Worker(connection, engine, session_factory(engine), tables)
    await w.start()
    yield w
    if w.consumer is not None:
        await w.consumer.stop(grace_s=1)
    await connection.close()
    await engine.dispose()


def _order_event() -> Envelope[EventPayload]:
    oid = uuid.uuid4()
    payload = OrderSubmitted(order_id=oid, carrier_order_id="c", submitted_at=datetime.now(UTC))
    return envelop(payload, source="/test", correlation_id=str(oid))  # type: ignore[return-value]


async def _publish(connection: AbstractRobustConnection, event: Envelope[EventPayload]) -> None:
    channel = await confirming_channel(connection)
    exchange = await declare_exchange(channel)
    await exchange.publish(
        aio_pika.Message(
            event.model_dump_json().encode(), type=event.type, message_id=event.id,
            correlation_id=event.correlationid, delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        ),
        routing_key=event.type,
    )  # fmt: skip
    await channel.close()


def _order_id(event: Envelope[EventPayload]) -> str:
    assert isinstance(event.data, OrderSubmitted)
    return str(event.data.order_id)


async def ops(amqp_url: str, *argv: str, stdin: Any = None) -> tuple[int, str, str]:
    """`mport-ops ARGV` in this process (its own event loop in a thread): exit code, out, err."""
    out, err = io.StringIO(), io.StringIO()
    code = await asyncio.to_thread(main, ["--amqp-url", amqp_url, *argv], out=out, err=err, stdin=stdin)
    return code, out.getvalue(), err.getvalue()


async def ops_json(amqp_url: str, *argv: str) -> Any:
    code, out, err = await ops(amqp_url, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


async def _dead(amqp_url: str, count: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    async def there() -> bool:
        found[:] = await ops_json(amqp_url, "dlq", "list", QUEUE.name)
        return len(found) >= count

    await wait_for(there, timeout_s=20, interval_s=0.2, what=f"{count} dead letters")
    return found


async def test_poison_messages_are_listed_grouped_and_a_group_replayed_after_the_fix_is_handled_once(
    worker: Worker, amqp_url: str
) -> None:
    refused = [_order_event() for _ in range(3)]
    alien = _order_event()
    worker.broken.update(_order_id(e) for e in refused)
    worker.permanent.add(_order_id(alien))
    for event in (*refused, alien):
        await _publish(worker.connection, event)

    letters = {d["message_id"]: d for d in await _dead(amqp_url, 4)}
    first = letters[refused[0].id]
    assert first["service"] == "portal-api"
    assert first["event_type"] == OrderSubmitted.event_type
    assert first["correlation_id"] == refused[0].correlationid
    assert first["reason"] == f"ConnectionError: carrier refused order {_order_id(refused[0])}"
    assert first["attempts"] == 2
    assert first["dead_lettered_by"] == "consumer"
    # The first failure is attempt 1's, kept across the retry; the last is when it gave up.
    assert first["first_failure"] < first["last_failure"]
    assert letters[alien.id]["attempts"] == 1
    assert letters[alien.id]["first_failure"] == letters[alien.id]["last_failure"]

    groups = await ops_json(amqp_url, "dlq", "list", "--group")
    assert [(g["count"], g["reason"]) for g in groups] == [
        (3, "ConnectionError: carrier refused order <id>"),
        (1, "order <id> is not ours"),
    ]
    code, table, _ = await ops(amqp_url, "dlq", "list", "--group")
    assert code == 0
    assert groups[0]["group_id"] in table
    assert "4 dead letter(s) in 2 group(s)" in table

    worker.broken.clear()  # the cause is fixed
    code, out, err = await ops(amqp_url, "dlq", "replay", "--group-id", groups[0]["group_id"])
    assert (code, out.strip()) == (0, "3 dead letter(s) replayed"), err

    async def handled() -> bool:
        return all(worker.effects[_order_id(e)] == 1 for e in refused)

    await wait_for(handled, timeout_s=10, what="the replayed group to be handled")
    assert [d["message_id"] for d in await ops_json(amqp_url, "dlq", "list")] == [alien.id]
    assert sum(worker.effects.values()) == 3
    assert await worker.inbox_rows() == 3

    # Asked for what is not there: a one-line error and exit code 1, nothing moved.
    code, _, err = await ops(amqp_url, "dlq", "replay", "--id", str(uuid.uuid4()))
    assert code == 1
    assert err.startswith("mport-ops: error: no dead letter matches: id ")
    code, _, err = await ops(amqp_url, "dlq", "replay", "--group-id", "00000000")
    assert code == 1
    assert "group 00000000" in err
    code, _, err = await ops(amqp_url, "dlq", "list", "no-such-service")
    assert code == 2
    assert "unknown service 'no-such-service'" in err


async def test_replay_by_time_range_takes_only_what_failed_in_it(worker: Worker, amqp_url: str) -> None:
    early = [_order_event() for _ in range(2)]
    late = [_order_event() for _ in range(2)]
    worker.permanent.update(_order_id(e) for e in (*early, *late))
    for event in early:
        await _publish(worker.connection, event)
    await _dead(amqp_url, 2)
    await asyncio.sleep(0.05)
    incident = datetime.now(UTC)
    await asyncio.sleep(0.05)
    for event in late:
        await _publish(worker.connection, event)
    await _dead(amqp_url, 4)
    worker.permanent.clear()

    code, out, err = await ops(amqp_url, "dlq", "replay", "portal-api", "--since", incident.isoformat())
    assert (code, out.strip()) == (0, "2 dead letter(s) replayed"), err

    async def late_handled() -> bool:
        return all(worker.effects[_order_id(e)] == 1 for e in late)

    await wait_for(late_handled, timeout_s=10, what="the messages since the incident to be handled")
    assert sorted(d["message_id"] for d in await ops_json(amqp_url, "dlq", "list")) == sorted(
        e.id for e in early
    )
    # --until before the incident, as a time ago: the early ones; nothing else is left.
    ago = f"{(datetime.now(UTC) - incident).total_seconds():.3f}s"
    code, out, err = await ops(amqp_url, "dlq", "replay", "--since", "1h", "--until", ago)
    assert (code, out.strip()) == (0, "2 dead letter(s) replayed"), err
    await wait_for(lambda: _all_once(worker, [*early, *late]), timeout_s=10, what="all handled")
    assert await ops_json(amqp_url, "dlq", "list") == []


async def _all_once(worker: Worker, events: list[Envelope[EventPayload]]) -> bool:
    return all(worker.effects[_order_id(e)] == 1 for e in events)


async def test_a_replay_killed_half_way_and_run_again_loses_and_doubles_nothing(
    worker: Worker, amqp_url: str
) -> None:
    events = [_order_event() for _ in range(12)]
    worker.permanent.update(_order_id(e) for e in events)
    for event in events:
        await _publish(worker.connection, event)
    await _dead(amqp_url, len(events))
    worker.permanent.clear()

    env = {**os.environ, "AMQP_URL": amqp_url}
    command = [sys.executable, "-m", "mport_shared.ops", "dlq", "replay", "portal-api", "--all"]
    slow = await asyncio.create_subprocess_exec(
        *command, "--batch", "2", "--rate", "2", env=env, start_new_session=True
    )
    try:

        async def some_replayed() -> bool:
            return sum(worker.effects.values()) >= 2

        await wait_for(some_replayed, timeout_s=20, what="the slow replay to get going")
    finally:
        os.killpg(slow.pid, signal.SIGKILL)
        await slow.wait()
    assert slow.returncode == -signal.SIGKILL
    left = await ops_json(amqp_url, "dlq", "list")
    assert 0 < len(left) < len(events), "the kill came too late to test anything"

    again = await asyncio.to_thread(
        subprocess.run, command, env=env, capture_output=True, text=True, timeout=60
    )
    assert again.returncode == 0, again.stderr
    await wait_for(lambda: _all_once(worker, events), timeout_s=15, what="every message handled")
    await asyncio.sleep(0.3)  # a duplicate copy, if any, has been delivered by now
    assert sorted(worker.effects.values()) == [1] * len(events)
    assert await worker.inbox_rows() == len(events)
    assert await ops_json(amqp_url, "dlq", "list") == []
    queues = {q["queue"]: q for q in await ops_json(amqp_url, "queues")}
    assert queues["portal-api"]["ready"] + queues["portal-api"]["unacked"] == 0


def _pty_run(argv: list[str], env: dict[str, str], answer: bytes) -> tuple[int, str]:
    """Run with a terminal as stdin (the prompt's condition), type `answer`, collect the output."""
    leader, follower = pty.openpty()
    try:
        process = subprocess.Popen(
            argv, env=env, stdin=follower, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        os.write(leader, answer)
        out, _ = process.communicate(timeout=60)
    finally:
        os.close(leader)
        os.close(follower)
    return process.returncode, out.decode()


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


async def test_purge_asks_first_and_no_deletes_nothing(worker: Worker, amqp_url: str) -> None:
    events = [_order_event() for _ in range(2)]
    worker.permanent.update(_order_id(e) for e in events)
    for event in events:
        await _publish(worker.connection, event)
    await _dead(amqp_url, 2)
    env = {**os.environ, "AMQP_URL": amqp_url}
    purge = [sys.executable, "-m", "mport_shared.ops", "dlq", "purge", "portal-api", "--all"]

    code, out = await asyncio.to_thread(_pty_run, purge, env, b"n\n")
    assert code == 1, out
    assert "Delete 2 dead letter(s) from portal-api.dead-letter? This cannot be undone. [y/N]" in out
    assert "Nothing deleted." in out
    assert len(await ops_json(amqp_url, "dlq", "list")) == 2

    # No terminal to ask on, and no --yes: refused.
    code, _, err = await ops(amqp_url, "dlq", "purge", "--all", stdin=io.StringIO("y\n"))
    assert code == 2
    assert "confirm on a terminal, or pass --yes" in err
    assert len(await ops_json(amqp_url, "dlq", "list")) == 2

    code, out, err = await ops(amqp_url, "dlq", "purge", "--id", events[0].id, stdin=Terminal("y\n"))
    assert code == 0, err
    assert "Delete 1 dead letter(s)" in err
    assert "1 dead letter(s) purged" in out
    # One id there and one not: the one is deleted, the other named, exit code 1.
    code, out, err = await ops(
        amqp_url, "dlq", "purge", "--id", events[1].id, "--id", "not-there", "--yes", "--batch", "1"
    )
    assert code == 1
    assert out.strip() == "1 dead letter(s) purged"
    assert err.strip() == "mport-ops: error: not found: id not-there"
    assert await ops_json(amqp_url, "dlq", "list") == []
    assert sum(worker.effects.values()) == 0


async def test_dlq_show_redacts_the_one_time_code(amqp_url: str) -> None:
    connection = await connect(amqp_url, name="test")
    await declare_all(await confirming_channel(connection))
    # No handler: dead-lettered at once.
    consumer = Consumer(
        channel=await confirming_channel(connection), queue=SMS_WORKER, handlers={},
        retry_delays_ms=(30,), prefetch=1,
    )  # fmt: skip
    await consumer.start()
    payload = VerificationRequested(
        verification_id=uuid.uuid4(), company_id=uuid.uuid4(), employee_id=uuid.uuid4(),
        msisdn="4791234567", code="482915", expires_at=datetime.now(UTC) + timedelta(minutes=5),
    )  # fmt: skip
    event = envelop(payload, source="/test", correlation_id="c-1")
    channel = await confirming_channel(connection)
    exchange = await declare_exchange(channel)
    await exchange.publish(
        aio_pika.Message(
            event.model_dump_json().encode(), type=event.type, message_id=event.id,
            headers={"authorization": "Bearer s3cr3t-value"},
        ),
        routing_key=event.type,
    )  # fmt: skip

    async def dead() -> bool:
        return len(await ops_json(amqp_url, "dlq", "list", "sms-worker")) == 1

    await wait_for(dead, timeout_s=10, what="the verification to be dead-lettered")
    code, text, err = await ops(amqp_url, "dlq", "show", event.id)
    assert code == 0, err
    shown = await ops_json(amqp_url, "dlq", "show", event.id, "--service", "sms-worker")
    for output in (text, json.dumps(shown, ensure_ascii=False)):
        assert "482915" not in output
        assert "s3cr3t-value" not in output
        assert "«redacted»" in output
    assert shown["body"]["data"]["code"] == "«redacted»"
    assert shown["headers"]["authorization"] == "«redacted»"
    assert shown["body"]["data"]["msisdn"] == "4791234567"  # only secrets are hidden
    assert shown["reason"] == f"no handler for {VerificationRequested.event_type} in sms-worker"
    code, _, err = await ops(amqp_url, "dlq", "show", str(uuid.uuid4()))
    assert code == 1
    assert err.startswith("mport-ops: error: no dead letter with message id")
    await consumer.stop(grace_s=1)
    await connection.close()


async def test_a_dead_letter_whose_copy_is_not_confirmed_stays_in_the_dead_letter_queue(
    worker: Worker, amqp_url: str
) -> None:
    events = [_order_event() for _ in range(3)]
    worker.permanent.update(_order_id(e) for e in events)
    for event in events:
        await _publish(worker.connection, event)
    await _dead(amqp_url, 3)
    assert worker.consumer is not None
    await worker.consumer.stop(grace_s=1)
    worker.consumer = None
    # No work queue to copy to: the broker returns each copy (mandatory) instead of confirming it.
    channel = await worker.connection.channel()
    await channel.queue_delete(QUEUE.name)
    await channel.close()

    code, _, err = await ops(amqp_url, "dlq", "replay", "--all", "--batch", "2")
    assert code == 1
    assert err.startswith("mport-ops: error: replay stopped: 0 replayed, then the broker refused a copy")
    left = sorted(d["message_id"] for d in await ops_json(amqp_url, "dlq", "list"))
    assert left == sorted(e.id for e in events)
