"""Dead letters: read them, group them, put them back on their work queue, or delete them.

Every command walks a dead-letter queue once: it takes the messages one by one (`basic.get`) up to
the number the queue held when it started, and puts back at once (nack, requeue) each one it does
not act on. RabbitMQ's quorum queues put a requeued message at the back, so each is seen once and
nothing is held unacked but the batch in hand. A replayed message is acked (leaves the dead-letter
queue) only after the broker confirmed its copy on the work queue: a replay that dies half-way
loses nothing, and its last batch may be on the work queue twice, which the consumer's inbox
absorbs (same message id)."""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection

from mport_shared.messaging.connection import confirming_channel, connect
from mport_shared.messaging.consumer import (
    ATTEMPT_HEADER,
    ATTEMPTS_HEADER,
    FAILED_AT_HEADER,
    FIRST_FAILED_AT_HEADER,
    ORIGINAL_ROUTING_KEY_HEADER,
    REASON_HEADER,
)
from mport_shared.messaging.topology import ServiceQueue

# Headers a replay drops, so the copy starts a fresh set of retries: ours, and the broker's
# dead-lettering history (x-death) and redelivery count.
_RESET_PREFIXES = ("x-mport-", "x-death", "x-first-death-", "x-last-death-", "x-delivery-count")
REPLAYED_AT_HEADER = "x-replayed-at"
REPLAYS_HEADER = "x-replays"

_BROKER_REASONS = {
    "delivery_limit": "the broker's delivery limit: delivered to {queue} again and again, never settled "
    "(the worker died or lost its connection every time it handled it)",
    "rejected": "rejected by a consumer of {queue} without requeueing",
    "expired": "expired (its time to live ran out) in {queue}",
    "maxlen": "dropped from {queue}, which was full (its maximum length)",
}


@dataclass(frozen=True)
class DeadLetter:
    service: str
    message_id: str
    correlation_id: str
    event_type: str
    reason: str
    attempts: int
    first_failure: datetime | None
    last_failure: datetime | None
    # "consumer" (it gave up, with its own reason) or "broker" (RabbitMQ dead-lettered it)
    dead_lettered_by: str
    headers: Mapping[str, Any] = field(repr=False, compare=False, default_factory=dict)
    body: bytes = field(repr=False, compare=False, default=b"")
    content_type: str | None = field(repr=False, compare=False, default=None)

    @property
    def group_id(self) -> str:
        return group_id(self.reason, self.event_type)

    def summary(self) -> dict[str, Any]:
        """The listing's row, JSON-ready (no body, no headers)."""
        return {
            "service": self.service,
            "event_type": self.event_type,
            "message_id": self.message_id,
            "correlation_id": self.correlation_id,
            "reason": self.reason,
            "attempts": self.attempts,
            "first_failure": _iso(self.first_failure),
            "last_failure": _iso(self.last_failure),
            "dead_lettered_by": self.dead_lettered_by,
            "group_id": self.group_id,
        }


_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_NUMBER = re.compile(r"\d+")


def reason_pattern(reason: str) -> str:
    """A reason with its ids and numbers blanked, so that one cause is one group."""
    return _NUMBER.sub("N", _UUID.sub("<id>", reason))


def group_id(reason: str, event_type: str) -> str:
    """A short stable id of (reason pattern, event type): the same on every run and machine."""
    digest = hashlib.sha256(f"{reason_pattern(reason)}\x00{event_type}".encode()).hexdigest()
    return digest[:8]


@dataclass(frozen=True)
class Group:
    group_id: str
    reason: str  # the pattern
    event_type: str
    count: int
    services: tuple[str, ...]
    first_failure: datetime | None
    last_failure: datetime | None

    def summary(self) -> dict[str, Any]:
        return {
            "group_id": self.group_id,
            "reason": self.reason,
            "event_type": self.event_type,
            "count": self.count,
            "services": list(self.services),
            "first_failure": _iso(self.first_failure),
            "last_failure": _iso(self.last_failure),
        }


def group(letters: Iterable[DeadLetter]) -> list[Group]:
    """Dead letters by (reason, event type), most first (as ServicePulse groups by exception)."""
    by_id: dict[str, list[DeadLetter]] = {}
    for letter in letters:
        by_id.setdefault(letter.group_id, []).append(letter)
    groups = []
    for gid, members in by_id.items():
        firsts = [m.first_failure for m in members if m.first_failure]
        lasts = [m.last_failure for m in members if m.last_failure]
        groups.append(
            Group(
                group_id=gid,
                reason=reason_pattern(members[0].reason),
                event_type=members[0].event_type,
                count=len(members),
                services=tuple(sorted({m.service for m in members})),
                first_failure=min(firsts) if firsts else None,
                last_failure=max(lasts) if lasts else None,
            )
        )
    return sorted(groups, key=lambda g: (-g.count, g.reason, g.event_type))


@dataclass(frozen=True)
class Selection:
    """Which dead letters a replay or purge acts on: all the given conditions hold."""

    ids: frozenset[str] | None = None
    group_ids: frozenset[str] | None = None
    since: datetime | None = None
    until: datetime | None = None

    def __call__(self, letter: DeadLetter) -> bool:
        if self.ids is not None and letter.message_id not in self.ids:
            return False
        if self.group_ids is not None and letter.group_id not in self.group_ids:
            return False
        if self.since is not None or self.until is not None:
            at = letter.last_failure
            if at is None:
                return False
            if self.since is not None and at < self.since:
                return False
            if self.until is not None and at > self.until:
                return False
        return True


ALL = Selection()


def describe(service: ServiceQueue, message: AbstractIncomingMessage) -> DeadLetter:
    headers = dict(message.headers or {})
    raw_deaths = headers.get("x-death")
    deaths = [d for d in raw_deaths if isinstance(d, Mapping)] if isinstance(raw_deaths, list) else []
    latest = deaths[0] if deaths else None  # the broker puts the newest first
    by_broker = latest is not None and _text(latest.get("reason")) in {"delivery_limit", "rejected", "maxlen"}
    own_reason = _text(headers.get(REASON_HEADER))
    broker = by_broker or (latest is not None and not own_reason)
    if latest is not None and broker:
        reason = _broker_reason(latest)
        last = _when(latest.get("time"))
        # The consumer's attempt number; x-delivery-count here counts the dead-letter queue's own
        # redeliveries (each listing requeues), not the work queue's.
        attempts = _int(headers.get(ATTEMPT_HEADER)) or 1
    else:
        reason = own_reason or "unknown (no reason recorded)"
        last = _when(headers.get(FAILED_AT_HEADER))
        attempts = _int(headers.get(ATTEMPTS_HEADER)) or _int(headers.get(ATTEMPT_HEADER)) or 1
    candidates = [_when(headers.get(FIRST_FAILED_AT_HEADER))]
    candidates += [_when(d.get("time")) for d in deaths if _text(d.get("reason")) != "expired"]
    known = [c for c in candidates if c is not None]
    first = min(known) if known else last
    if last is None:
        last = first
    return DeadLetter(
        service=service.name,
        message_id=message.message_id or "?",
        correlation_id=message.correlation_id or _text(headers.get("correlationid")),
        event_type=message.type or _text(headers.get(ORIGINAL_ROUTING_KEY_HEADER)) or "?",
        reason=reason,
        attempts=attempts,
        first_failure=first,
        last_failure=last,
        dead_lettered_by="broker" if broker else "consumer",
        headers=headers,
        body=message.body,
        content_type=message.content_type,
    )


def _broker_reason(death: Mapping[str, Any]) -> str:
    code = _text(death.get("reason"))
    template = _BROKER_REASONS.get(code, "dead-lettered by the broker ({code}) from {queue}")
    words = template.format(queue=_text(death.get("queue")) or "its queue", code=code or "no reason given")
    return f"{words} [{code}]" if code else words


# ---- walking a dead-letter queue ------------------------------------------------------------

Batch = list[tuple[DeadLetter, AbstractIncomingMessage]]
BatchHandler = Callable[[AbstractChannel, ServiceQueue, Batch], Awaitable[int]]


async def _walk(
    connection: AbstractRobustConnection,
    service: ServiceQueue,
    select: Callable[[DeadLetter], bool],
    *,
    handle: BatchHandler | None = None,
    batch: int = 100,
    rate: float | None = None,
) -> tuple[list[DeadLetter], int]:
    """Visit each message of the service's dead-letter queue once; hand the selected ones to
    `handle` `batch` at a time (at most `rate` per second). Returns the selected and how many
    `handle` settled."""
    channel = await confirming_channel(connection)
    try:
        try:
            # Not robust: a robust channel would answer a later passive declare from its cache.
            queue = await channel.declare_queue(service.dead_letter, passive=True, robust=False)
        except aiormq.exceptions.ChannelNotFoundEntity:
            return [], 0  # never declared: nothing was ever dead-lettered there
        total = queue.declaration_result.message_count or 0
        chosen: list[DeadLetter] = []
        pending: Batch = []
        settled = 0
        started = time.monotonic()

        async def flush() -> None:
            nonlocal settled, pending
            if not pending:
                return
            assert handle is not None
            settled += await handle(channel, service, pending)
            pending = []
            if rate:
                # Paced over the whole run: `settled` messages should have taken settled/rate s.
                ahead = settled / rate - (time.monotonic() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)

        for _ in range(total):
            message = await queue.get(fail=False)
            if message is None:
                break
            letter = describe(service, message)
            if not select(letter):
                await message.nack(requeue=True)
                continue
            chosen.append(letter)
            if handle is None:
                await message.nack(requeue=True)
                continue
            pending.append((letter, message))
            if len(pending) >= batch:
                await flush()
        await flush()
        return chosen, settled
    finally:
        if not channel.is_closed:
            await channel.close()


async def _replay_batch(channel: AbstractChannel, service: ServiceQueue, batch: Batch) -> int:
    """Copy each to the work queue; ack (remove) an original only once its copy is confirmed."""
    now = datetime.now(UTC).isoformat()

    async def publish(letter: DeadLetter, message: AbstractIncomingMessage) -> None:
        headers = {k: v for k, v in letter.headers.items() if not k.startswith(_RESET_PREFIXES)}
        headers[REPLAYS_HEADER] = _int(letter.headers.get(REPLAYS_HEADER)) + 1
        headers[REPLAYED_AT_HEADER] = now
        await channel.default_exchange.publish(
            aio_pika.Message(
                message.body, headers=headers, content_type=message.content_type,
                message_id=message.message_id, correlation_id=message.correlation_id,
                type=message.type, timestamp=message.timestamp,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key=service.name, mandatory=True, timeout=30,
        )  # fmt: skip

    results = await asyncio.gather(
        *(publish(letter, message) for letter, message in batch), return_exceptions=True
    )
    done = 0
    failure: BaseException | None = None
    for (_, message), result in zip(batch, results, strict=True):
        if isinstance(result, BaseException):
            failure = failure or result
            await message.nack(requeue=True)
        else:
            await message.ack()
            done += 1
    if failure is not None:
        raise ReplayFailed(f"{done} replayed, then the broker refused a copy: {failure}") from failure
    return done


async def _purge_batch(_channel: AbstractChannel, _service: ServiceQueue, batch: Batch) -> int:
    for _, message in batch:
        await message.ack()
    return len(batch)


class ReplayFailed(Exception):
    pass


async def dead_letters(
    amqp_url: str, services: Iterable[ServiceQueue], select: Callable[[DeadLetter], bool] = ALL
) -> list[DeadLetter]:
    """Every dead letter of the services (or those `select` picks); all stay where they are."""
    connection = await connect(amqp_url, name="mport-ops")
    try:
        found: list[DeadLetter] = []
        for service in services:
            letters, _ = await _walk(connection, service, select)
            found.extend(letters)
        return found
    finally:
        await connection.close()


async def replay(
    amqp_url: str,
    services: Iterable[ServiceQueue],
    select: Callable[[DeadLetter], bool],
    *,
    batch: int = 100,
    rate: float | None = None,
) -> int:
    """Put the selected dead letters back on their work queues with a fresh set of retries;
    returns how many left the dead-letter queues."""
    return await _settle(amqp_url, services, select, _replay_batch, batch=batch, rate=rate)


async def purge(
    amqp_url: str,
    services: Iterable[ServiceQueue],
    select: Callable[[DeadLetter], bool],
    *,
    batch: int = 100,
) -> int:
    """Delete the selected dead letters; returns how many."""
    return await _settle(amqp_url, services, select, _purge_batch, batch=batch, rate=None)


async def _settle(
    amqp_url: str,
    services: Iterable[ServiceQueue],
    select: Callable[[DeadLetter], bool],
    handle: BatchHandler,
    *,
    batch: int,
    rate: float | None,
) -> int:
    connection = await connect(amqp_url, name="mport-ops")
    try:
        done = 0
        for service in services:
            _, settled = await _walk(connection, service, select, handle=handle, batch=batch, rate=rate)
            done += settled
        return done
    finally:
        await connection.close()


# ---- header values --------------------------------------------------------------------------


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _int(value: Any) -> int:
    try:
        return int(_text(value)) if value is not None else 0
    except ValueError:
        return 0


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = _text(value)
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
