"""Transactional outbox: events are rows committed with the business change, then relayed."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, Table, event, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from mport_shared import metrics, tracing
from mport_shared.events import Envelope, EventPayload
from mport_shared.logging import get_logger
from mport_shared.messaging.publisher import OutgoingMessage, Publisher

log = get_logger(__name__)

_ADDED = "mport_outbox_added"
# A batch of unsent rows: id, message_id, routing_key, body, headers, expires_at.
_Unsent = Sequence[Row[Any, Any, Any, Any, Any, Any]]
# Any constant works; it only has to be the same for every relay of one service database.
_RELAY_LOCK_KEY = 0x6D706F7274


async def add_to_outbox(
    session: AsyncSession,
    outbox: Table,
    envelope: Envelope[EventPayload],
    *,
    expires_at: datetime | None = None,
) -> None:
    """Stage an event in the caller's transaction; it is published only if that transaction commits."""
    await add_all_to_outbox(session, outbox, [envelope], expires_at=expires_at)


async def add_all_to_outbox(
    session: AsyncSession,
    outbox: Table,
    envelopes: list[Envelope[EventPayload]],
    *,
    expires_at: datetime | None = None,
) -> None:
    """Stage several events in the caller's transaction, in order, with one statement."""
    if not envelopes:
        return
    with outbox_rows([(envelope, expires_at) for envelope in envelopes]) as rows:
        # The row as parameters, not .values(): building the statement's values was a twentieth of
        # placing an order on SQLite.
        statement = insert(outbox)
        await session.execute(statement, rows[0] if len(rows) == 1 else rows)  # ids follow the list's order
    mark_added(session)


@contextlib.contextmanager
def outbox_rows(
    events: Sequence[tuple[Envelope[EventPayload], datetime | None]],
) -> Iterator[list[dict[str, Any]]]:
    """The outbox rows of these events (each with when it expires, if it does), for a caller that
    writes them with a statement of its own, inside the block: each event's traceparent becomes
    the span of its outbox write. After the write, `mark_added` wakes the relay on commit."""
    with tracing.outbox_write([envelope for envelope, _ in events]) as stamped:
        rows = []
        for envelope, (_, expires_at) in zip(stamped, events, strict=True):
            message = OutgoingMessage.from_envelope(envelope, expires_at=expires_at)
            rows.append(
                {
                    "message_id": message.message_id,
                    "routing_key": message.routing_key,
                    "body": message.body.decode(),
                    "headers": dict(message.headers),
                    "expires_at": expires_at,
                }
            )
        yield rows


def mark_added(session: AsyncSession) -> None:
    """The session's transaction added outbox rows: the relay is woken when it commits."""
    session.info[_ADDED] = True


class OutboxRelay:
    """Publishes unsent outbox rows in id order, with pipelined confirms, and marks them sent.

    It wakes right after a commit that added rows (same process) and otherwise polls, so rows
    written by another process or left over from a crash are picked up too."""

    def __init__(
        self,
        *,
        service: str,
        sessions: async_sessionmaker[AsyncSession],
        outbox: Table,
        publisher: Publisher,
        batch_size: int = 500,
        poll_interval_s: float = 0.5,
        retry_interval_s: float = 1.0,
        linger_s: float = 0.002,
        gauge_interval_s: float = 5.0,
    ) -> None:
        self._service = service
        self._sessions = sessions
        self._outbox = outbox
        self._publisher = publisher
        self._batch_size = batch_size
        self._poll_interval_s = poll_interval_s
        self._retry_interval_s = retry_interval_s
        # After a commit wakes it, the relay waits this long before it reads: commits that come
        # meanwhile go out in the same batch. Under the bench load (about 60 commits a second
        # per service) 2 ms let a batch carry several rows instead of one, and each batch costs
        # one read, one publish round and one update whatever its size.
        self._linger_s = linger_s
        # The backlog gauges are refreshed by a task of their own, so they keep rising while
        # publishing is stuck (the broker cut off), not only when a poll finds the outbox empty.
        self._gauge_interval_s = gauge_interval_s
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._gauges: asyncio.Task[None] | None = None
        self._watch(sessions)

    def _watch(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        # A session class of our own, so the hook sees only this service's commits.
        session_class = type("OutboxSession", (Session,), {})
        sessions.configure(sync_session_class=session_class)

        @event.listens_for(session_class, "after_commit")
        def _after_commit(session: Session) -> None:
            if session.info.pop(_ADDED, False):
                self.notify()

    def notify(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name=f"outbox-relay-{self._service}")
        self._gauges = asyncio.create_task(self._keep_gauges(), name=f"outbox-gauges-{self._service}")

    async def stop(self) -> None:
        """Publish what is already committed, then stop."""
        self._stopping = True
        self._wake.set()
        if self._gauges is not None:
            self._gauges.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._gauges
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _keep_gauges(self) -> None:
        while True:
            try:
                await self.backlog()
            except Exception:
                log.debug("could not read the outbox backlog", exc_info=True)
            await asyncio.sleep(self._gauge_interval_s)

    async def run(self) -> None:
        while True:
            self._wake.clear()
            try:
                published = await self.publish_pending()
            except Exception:
                metrics.OUTBOX_FAILURES.labels(self._service).inc()
                log.warning("outbox relay could not publish; will retry", exc_info=True)
                if self._stopping:
                    return
                await asyncio.sleep(self._retry_interval_s)
                continue
            if published >= self._batch_size:
                continue  # a full batch: more are probably waiting
            if self._stopping:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_interval_s)
                if self._linger_s and not self._stopping:
                    await asyncio.sleep(self._linger_s)

    async def publish_pending(self) -> int:
        """Publish one batch of unsent rows; returns how many rows it handled."""
        async with self._sessions() as session:
            if session.get_bind().dialect.name == "postgresql":
                async with session.begin():
                    # One relay at a time per database keeps the publish order the commit order:
                    # the lock is the transaction's, held from the read to the update.
                    locked = await session.scalar(select(func.pg_try_advisory_xact_lock(_RELAY_LOCK_KEY)))
                    if not locked:
                        return 0
                    rows = await self._unsent(session)
                    now = datetime.now(UTC)
                    done, failures = await self._publish(rows, now=now)
                    await self._mark_sent(session, done, now=now)
                return self._handled(rows, failures)
            # SQLite: one process per database file, so one relay and no lock to hold; and the
            # connection is not held while the broker confirms. On make run's SQLite it is the
            # service's only one (db.InlineSqlite): a broker slow to confirm, or away, would
            # hold up every request for as long.
            rows = await self._unsent(session)
            await session.rollback()
        now = datetime.now(UTC)
        done, failures = await self._publish(rows, now=now)
        if done:
            async with self._sessions.begin() as session:
                await self._mark_sent(session, done, now=now)
        return self._handled(rows, failures)

    async def _unsent(self, session: AsyncSession) -> _Unsent:
        table = self._outbox
        rows = (
            await session.execute(
                select(
                    table.c.id,
                    table.c.message_id,
                    table.c.routing_key,
                    table.c.body,
                    table.c.headers,
                    table.c.expires_at,
                )
                .where(table.c.sent_at.is_(None))
                .order_by(table.c.id)
                .limit(self._batch_size)
            )
        ).all()
        if not rows:
            metrics.OUTBOX_BACKLOG.labels(self._service).set(0)
            metrics.OUTBOX_OLDEST_AGE.labels(self._service).set(0)
        return rows

    async def _publish(self, rows: _Unsent, *, now: datetime) -> tuple[list[int], list[BaseException]]:
        """Publish the rows; the ids of those done with (confirmed, or expired), and the errors."""
        if not rows:
            return [], []
        live: list[tuple[int, OutgoingMessage]] = []
        done: list[int] = []
        for row in rows:
            expires_at = _aware(row.expires_at)
            if expires_at is not None and expires_at <= now:
                # It would only be dropped by the broker; say so here instead.
                log.info(
                    "outbox row expired before publishing",
                    message_id=row.message_id,
                    routing_key=row.routing_key,
                )
                done.append(row.id)
                continue
            live.append(
                (
                    row.id,
                    OutgoingMessage(
                        message_id=row.message_id,
                        routing_key=row.routing_key,
                        body=row.body.encode(),
                        headers=row.headers,
                        expires_at=expires_at,
                    ),
                )
            )
        results = await self._publisher.publish_many([m for _, m in live], now=now)
        failures = [err for err in results if err is not None]
        done.extend(row_id for (row_id, _), err in zip(live, results, strict=True) if err is None)
        confirmed = Counter(m.routing_key for (_, m), err in zip(live, results, strict=True) if err is None)
        for event_type, count in confirmed.items():
            metrics.MESSAGES_PUBLISHED.labels(self._service, event_type).inc(count)
        return done, failures

    async def _mark_sent(self, session: AsyncSession, done: list[int], *, now: datetime) -> None:
        if done:
            table = self._outbox
            await session.execute(update(table).where(table.c.id.in_(done)).values(sent_at=now))

    @staticmethod
    def _handled(rows: _Unsent, failures: list[BaseException]) -> int:
        if failures:
            raise failures[0]
        return len(rows)

    async def backlog(self) -> tuple[int, float]:
        """How many rows wait to be published and how old the oldest is, in seconds."""
        table = self._outbox
        async with self._sessions() as session:
            count, oldest = (
                await session.execute(
                    select(func.count(), func.min(table.c.created_at)).where(table.c.sent_at.is_(None))
                )
            ).one()
        oldest_at = _aware(oldest)
        age = (datetime.now(UTC) - oldest_at).total_seconds() if oldest_at else 0.0
        metrics.OUTBOX_BACKLOG.labels(self._service).set(count)
        metrics.OUTBOX_OLDEST_AGE.labels(self._service).set(age)
        return int(count), age


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; every time we store is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value
