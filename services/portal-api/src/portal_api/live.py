"""Live order and verification status, and new salary deductions, for the pages: every portal
process copies status events from the broker into the server-sent event streams of the employees
signed in to it (`GET /api/v1/events`)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

import anyio
from aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractRobustChannel,
    AbstractRobustConnection,
    AbstractRobustQueue,
)
from fastapi import APIRouter, Request
from mport_shared.events import (
    EventPayload,
    OrderCompleted,
    OrderFailed,
    OrderProgressed,
    OrderSubmitted,
    PayrollDeductionRecorded,
    PayrollDeductionReversed,
    VerificationCodeSent,
    VerificationDelivered,
    VerificationDeliveryFailed,
    parse_envelope,
)
from mport_shared.logging import get_logger
from mport_shared.messaging.topology import declare_exchange
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.types import Receive, Scope, Send

from portal_api.auth.sessions import session_alive
from portal_api.deps import SignedIn, SignedInEmployee, clock, get_runtime, session_guard, session_policy
from portal_api.errors import ErrorCode, NotSignedIn
from portal_api.orders.domain import OPEN_STATUSES, OrderStatus
from portal_api.problems import TOO_MANY_EVENT_STREAMS, problem_responses
from portal_api.ratelimit import TooManyRequests
from portal_api.unit_of_work import SqlUnitsOfWork
from portal_api.verifications.domain import DeliveryEvent, delivery_change

log = get_logger(__name__)
K = TypeVar("K")

STATUS_EVENTS = (
    OrderSubmitted.event_type,
    OrderProgressed.event_type,
    OrderCompleted.event_type,
    OrderFailed.event_type,
    VerificationCodeSent.event_type,
    VerificationDelivered.event_type,
    VerificationDeliveryFailed.event_type,
    PayrollDeductionRecorded.event_type,
    PayrollDeductionReversed.event_type,
)
KEEP_ALIVE_S = 15
# A stream that falls this far behind drops updates; the page asks for its open orders on reconnect.
STREAM_BUFFER = 100
# A hint only: a place frees up when another of the employee's pages closes its stream.
STREAM_RETRY_AFTER_S = 30
# One primary-key read per open stream this often: 500 open streams cost about 8 reads a second.
SESSION_CHECK_S = 60.0


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """What a page is told about an order: the data of one `order` server-sent event."""

    event: ClassVar[str] = "order"
    order_id: str
    status: str
    product_code: str
    failure_reason: str | None = None
    failure_code: str | None = None
    # While the order is with the carrier (status submitted): its state and expected completion.
    carrier_state: str | None = None
    expected_completion_at: str | None = None  # ISO 8601, UTC
    # delete: the order ends the service (Avslutt), so its completion removes it from the page.
    action: str = "add"

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @property
    def subject(self) -> str:
        return self.order_id


@dataclass(frozen=True, slots=True)
class VerificationUpdate:
    """How far a one-time code's SMS got: the data of one `verification` server-sent event."""

    event: ClassVar[str] = "verification"
    verification_id: str
    delivery_status: str  # requested, sent, delivered, failed
    delivery_reason: str | None = None
    delivery_reason_code: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @property
    def subject(self) -> str:
        return self.verification_id


@dataclass(frozen=True, slots=True)
class DeductionUpdate:
    """A salary deduction line recorded for the employee: the data of one `deduction` event (Mine
    lønnstrekk shows it once the portal's read model has it)."""

    event: ClassVar[str] = "deduction"
    line_id: str
    order_id: str
    period: str
    kind: str
    amount_ore: int
    text: str

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @property
    def subject(self) -> str:
        return self.line_id


LiveUpdate = OrderUpdate | VerificationUpdate | DeductionUpdate


class TooManyStreams(Exception):
    """The employee already has as many open event streams as one portal process allows."""


@dataclass
class LiveHub:
    """The open event streams of this process, by employee (at most `max_per_employee` each) and
    by sign-in session."""

    buffer: int = STREAM_BUFFER
    max_per_employee: int = 10
    # How often an open stream checks that its session is alive (ended in another process, timed
    # out, ended by an administrator); Logg ut in this process ends the session's streams at once.
    session_check_s: float = SESSION_CHECK_S
    _streams: dict[uuid.UUID, set[asyncio.Queue[LiveUpdate | None]]] = field(default_factory=dict)
    _by_session: dict[bytes, set[asyncio.Queue[LiveUpdate | None]]] = field(default_factory=dict)

    def open(self, employee_id: uuid.UUID, *, session: bytes) -> asyncio.Queue[LiveUpdate | None]:
        """A new stream's queue, or TooManyStreams. No await between the count and the add, so
        concurrent requests cannot both take the last place. `session` (the hash of its token)
        lets end_session end it."""
        streams = self._streams.setdefault(employee_id, set())
        if len(streams) >= self.max_per_employee:
            if not streams:
                self._streams.pop(employee_id, None)
            raise TooManyStreams
        queue: asyncio.Queue[LiveUpdate | None] = asyncio.Queue(maxsize=self.buffer)
        streams.add(queue)
        self._by_session.setdefault(session, set()).add(queue)
        return queue

    def close_stream(
        self, employee_id: uuid.UUID, queue: asyncio.Queue[LiveUpdate | None], *, session: bytes
    ) -> None:
        """Give the stream's place back; closing one twice is harmless."""
        _leave(self._streams, employee_id, queue)
        _leave(self._by_session, session, queue)

    def open_streams(self, employee_id: uuid.UUID) -> int:
        return len(self._streams.get(employee_id, ()))

    @property
    def watched(self) -> bool:
        return bool(self._streams)

    def watching(self, employee_id: uuid.UUID) -> bool:
        return employee_id in self._streams

    def publish(self, employee_id: uuid.UUID, update: LiveUpdate) -> None:
        for queue in self._streams.get(employee_id, ()):
            try:
                queue.put_nowait(update)
            except asyncio.QueueFull:
                log.warning("live stream behind; update dropped", kind=update.event, subject=update.subject)

    def end_session(self, session: bytes) -> None:
        """End the streams opened with this session (Logg ut)."""
        for queue in self._by_session.get(session, ()):
            _end(queue)

    def close(self) -> None:
        """End every stream (shutdown)."""
        for streams in self._streams.values():
            for queue in streams:
                _end(queue)


def _leave(
    index: dict[K, set[asyncio.Queue[LiveUpdate | None]]], key: K, queue: asyncio.Queue[LiveUpdate | None]
) -> None:
    streams = index.get(key, set())
    streams.discard(queue)
    if not streams:
        index.pop(key, None)


def _end(queue: asyncio.Queue[LiveUpdate | None]) -> None:
    try:
        queue.put_nowait(None)
    except asyncio.QueueFull:
        # A stream this far behind: make room, the end matters more than an update it lags on.
        queue.get_nowait()
        queue.put_nowait(None)


# The broker deletes a live feed's queue that has had no consumer for this long: the queue of a
# portal process that was killed. Long enough for a reconnection; its messages are then of no use.
LIVE_QUEUE_EXPIRES_MS = 120_000
LIVE_QUEUE_ARGUMENTS: dict[str, object] = {
    "x-queue-type": "quorum",
    "x-expires": LIVE_QUEUE_EXPIRES_MS,
    "x-max-length": 10_000,
    "x-overflow": "drop-head",
}


@dataclass
class LiveFeed:
    """This process's own copy of the order status events, for the event streams only.

    The status consumer on the `portal-api` work queue is a competing consumer: with several portal
    instances, the one that applies a status change to the database is rarely the one holding the
    employee's event stream, so an in-process listener on `OrderStatusHandlers` would miss most
    updates. Instead each process binds a queue of its own to the events exchange and so sees
    every status event. It writes nothing (the work queue's consumer owns that) and acks at once:
    a lost copy only delays a page until it reconciles. The event can arrive before the work
    queue's consumer has committed it; the page therefore updates itself from the event, and never
    moves an order's status backwards.

    The queue is a quorum queue, like every other queue the events are routed to, not an exclusive
    classic one. A classic queue lives on one broker node. When that node stopped, the queue's
    record could stay behind for minutes, "stopped" and still bound, and the broker then nacked
    every status event routed to it: the workers' outboxes could publish none of them and sent
    them again and again (a CI run of tests/e2e/test_cluster_failover.py). A quorum queue keeps
    its place on the other nodes. Not being exclusive, it is deleted by `stop`, or by the broker
    once it has had no consumer for LIVE_QUEUE_EXPIRES_MS (a process that was killed); it keeps
    its name across reconnections, so the events of a reconnection's gap still arrive."""

    hub: LiveHub
    units: SqlUnitsOfWork
    queue_name: str = field(
        default_factory=lambda: f"portal-api.live.{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
    )
    _channel: AbstractRobustChannel | None = None
    _queue: AbstractRobustQueue | None = None
    _consumer_tag: str | None = None
    # Messages are routed one at a time, in the order they came: a quick "completed" must not
    # overtake the "submitted" before it while that one waits for its database look-up.
    _inbox: asyncio.Queue[bytes] = field(default_factory=lambda: asyncio.Queue(maxsize=10_000))
    _router: asyncio.Task[None] | None = None

    async def start(self, connection: AbstractRobustConnection) -> None:
        channel = await connection.channel()
        assert isinstance(channel, AbstractRobustChannel)
        self._channel = channel
        await channel.set_qos(prefetch_count=STREAM_BUFFER)
        self._router = asyncio.create_task(self._route_in_order(), name="live-feed")
        await self._declare_and_consume()
        # Declared again, and consumed again, each time the robust channel reopens.
        self._channel.reopen_callbacks.add(self._on_reopen)

    async def _on_reopen(self, _channel: object) -> None:
        try:
            await self._declare_and_consume()
        except Exception:
            log.warning("the live order status feed could not be restored", exc_info=True)

    async def _declare_and_consume(self) -> None:
        assert self._channel is not None
        exchange = await declare_exchange(self._channel)
        queue = await self._channel.declare_queue(
            self.queue_name, durable=True, arguments=LIVE_QUEUE_ARGUMENTS, robust=False
        )
        assert isinstance(queue, AbstractRobustQueue)
        self._queue = queue
        for key in STATUS_EVENTS:
            await queue.bind(exchange, routing_key=key, robust=False)
        self._consumer_tag = await queue.consume(self._on_message, robust=False)
        log.info("live order status feed started", queue=self.queue_name)

    async def stop(self) -> None:
        if self._queue is not None and self._consumer_tag is not None:
            try:
                await self._queue.cancel(self._consumer_tag)
                await self._queue.delete(if_unused=False, if_empty=False)
            except Exception:
                log.warning(
                    "could not remove the live feed's queue cleanly; the broker deletes it unused",
                    queue=self.queue_name,
                    expires_ms=LIVE_QUEUE_EXPIRES_MS,
                    exc_info=True,
                )
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()
        if self._router is not None:
            self._router.cancel()
            with suppress(asyncio.CancelledError):
                await self._router
        self.hub.close()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        if self.hub.watched:
            try:
                self._inbox.put_nowait(message.body)  # before any await: keeps the delivery order
            except asyncio.QueueFull:
                log.warning("live feed behind; status event dropped", routing_key=message.routing_key)
        await message.ack()

    async def _route_in_order(self) -> None:
        while True:
            body = await self._inbox.get()
            await self._deliver(body)

    async def _deliver(self, body: bytes) -> None:
        try:
            envelope = parse_envelope(body)
        except ValueError:
            log.warning("live feed skipped an unreadable message")
            return
        try:
            target = await self._route(envelope.data)
        except Exception:
            log.warning("live feed could not route a status event", exc_info=True)
            return
        if target is not None:
            self.hub.publish(*target)

    async def _route(self, event: EventPayload) -> tuple[uuid.UUID, LiveUpdate] | None:
        """Whose stream the event belongs on, and what it says."""
        match event:
            case PayrollDeductionRecorded() | PayrollDeductionReversed():
                line = event.line
                return line.employee_id, DeductionUpdate(
                    str(line.line_id),
                    str(line.order_id),
                    line.period,
                    line.kind.value,
                    line.amount_ore,
                    line.text,
                )
            case VerificationCodeSent() | VerificationDelivered() | VerificationDeliveryFailed():
                return await self._route_verification(event)
            case OrderCompleted():
                order = event.order
                return order.employee_id, OrderUpdate(
                    str(order.order_id), OrderStatus.COMPLETED.value, order.product_code, action=order.action
                )
            case OrderFailed():
                order = event.order
                return order.employee_id, OrderUpdate(
                    str(order.order_id),
                    OrderStatus.FAILED.value,
                    order.product_code,
                    failure_reason=event.reason,
                    failure_code=event.reason_code.value,
                    action=order.action,
                )
            case OrderSubmitted() | OrderProgressed():
                # These events name only the order: look up (read only) whose it is.
                async with self.units.new() as uow:
                    stored = await uow.orders.find(event.order_id)
                if stored is None or stored.status not in OPEN_STATUSES:
                    return None  # unknown, or done already: the page has nothing to show
                expected = event.expected_completion_at
                return stored.employee_id, OrderUpdate(
                    str(event.order_id),
                    OrderStatus.SUBMITTED.value,
                    stored.product_code,
                    carrier_state=event.carrier_state,
                    expected_completion_at=_utc_iso(expected) if expected is not None else None,
                    action=stored.action or "add",
                )
        return None

    async def _route_verification(self, event: DeliveryEvent) -> tuple[uuid.UUID, LiveUpdate] | None:
        # The report names the verification only: whose it is, from the database (the row was
        # committed before its code was sent, so it is there whatever the work queue does).
        async with self.units.new() as uow:
            stored = await uow.verifications.find(event.verification_id)
        if stored is None:
            return None
        change = delivery_change(event)
        return stored.employee_id, VerificationUpdate(
            str(event.verification_id),
            change.to.value,
            delivery_reason=change.reason,
            delivery_reason_code=change.reason_code,
        )


def _utc_iso(moment: datetime) -> str:
    return (moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


router = APIRouter(prefix="/api/v1", tags=["events"])


async def _stream_owner(request: Request, who: SignedIn) -> uuid.UUID:
    """The signed-in employee, looked up in a unit of work of its own: a stream lives for hours
    and must not hold the request's database connection all that time. The session is checked in
    the same query; opening a stream is no activity of the employee's (a page reconnects by
    itself), so it does not move the session's last_seen_at."""
    units: SqlUnitsOfWork = request.app.state.units
    guard = session_guard(request)  # who came from the same cookie: there is one
    async with units.new(guard=guard) as uow:
        if await uow.employees.exists(who.employee_id):
            return who.employee_id
    raise NotSignedIn()


async def _session_alive(request: Request, session: bytes) -> bool:
    async with get_runtime(request).sessions() as db:
        return await session_alive(db, session, policy=session_policy(request), now=clock(request)())


@router.get(
    "/events",
    response_class=EventSourceResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "order and verification status changes"},
        **problem_responses(ErrorCode.NOT_SIGNED_IN, TOO_MANY_EVENT_STREAMS),
    },
)
async def events(request: Request, who: SignedInEmployee) -> EventSourceResponse:
    """Server-sent events: `ready` once listening, then an `order` event
    (`{order_id, status, product_code, failure_reason, failure_code, carrier_state,
    expected_completion_at}`) for each status change of this employee's orders, and only theirs,
    and for each change in the carrier's progress while an order is with the carrier; a
    `verification` event (`{verification_id, delivery_status, delivery_reason,
    delivery_reason_code}`) for each delivery report of the SMS of their one-time codes.

    One stream per open page; past MAX_EVENT_STREAMS_PER_EMPLOYEE at once (per portal process)
    the next is refused with a 429 problem. The stream ends when its session does (Logg ut, a
    timeout, an administrator's change)."""
    employee_id = await _stream_owner(request, who)
    hub: LiveHub = request.app.state.live_hub
    try:
        queue = hub.open(employee_id, session=who.session)
    except TooManyStreams:
        log.warning("event stream refused: too many open", employee_id=str(employee_id))
        raise TooManyRequests(
            f"You already have {hub.max_per_employee} live status streams open (one per open page); "
            "close a tab and try again.",
            retry_after_s=STREAM_RETRY_AFTER_S,
            code=TOO_MANY_EVENT_STREAMS,
        ) from None
    # Set when the server shuts down: the stream then ends properly and the browser reconnects
    # (to another instance) instead of seeing a broken response.
    shutdown = anyio.Event()

    async def stream() -> AsyncIterator[ServerSentEvent]:
        yield ServerSentEvent(event="ready", data="{}", retry=3000)
        while True:
            try:
                update = await asyncio.wait_for(_next_update(queue, shutdown), hub.session_check_s)
            except TimeoutError:
                if await _session_alive(request, who.session):
                    continue
                log.info("event stream ended with its session", employee_id=str(employee_id))
                return
            if update is None:
                return
            yield ServerSentEvent(event=update.event, data=update.to_json())

    headers: dict[str, Any] = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return _StreamResponse(
        stream(),
        release=lambda: hub.close_stream(employee_id, queue, session=who.session),
        ping=KEEP_ALIVE_S,
        headers=headers,
        shutdown_event=shutdown,
        shutdown_grace_period=2.0,
    )


class _StreamResponse(EventSourceResponse):
    """Gives the stream's place back however the response ends: the client went away, the server
    shut down, or the client left before the stream's first event (so the generator, and any
    `finally` in it, never ran)."""

    def __init__(self, *args: Any, release: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


async def _next_update(queue: asyncio.Queue[LiveUpdate | None], shutdown: anyio.Event) -> LiveUpdate | None:
    """The next update for the stream, or None once it should end."""
    if shutdown.is_set():
        return None
    getter = asyncio.ensure_future(queue.get())
    stopper = asyncio.ensure_future(shutdown.wait())
    try:
        await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (getter, stopper):
            if not task.done():
                task.cancel()
    return getter.result() if getter.done() and not getter.cancelled() else None
