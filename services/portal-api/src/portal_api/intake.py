"""Admission control for new orders: the portal takes orders only as fast as they are provisioned.

Without it, a portal that accepts faster than the workers can provision (a campaign morning, or
everything sharing two cores) builds a backlog without bound: every order accepted at once, each
one completed later and later. So the portal watches the pipeline's backlog, and while some part
of it is behind, a new order waits for it to catch up (at most INTAKE_WAIT_S), then is refused
with 503 and Retry-After; nothing is stored for a refused order, so trying again is safe.

Behind means *working and not keeping up*, never *away*: a queue counts only while it has
consumers, and the portal's own outbox only while the broker is connected. A stopped worker, a
broker outage or a carrier that is down therefore never closes the gate; those orders wait in a
durable queue, the outbox or the order-worker's own table, as the design promises."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractRobustConnection
from fastapi import Request
from mport_shared.logging import get_logger
from mport_shared.messaging.outbox import OutboxRelay
from mport_shared.messaging.topology import ServiceQueue

from portal_api.deps import SignedInEmployee
from portal_api.metrics import INTAKE_GATE_CLOSED, INTAKE_HELD, INTAKE_REFUSED
from portal_api.problems import PIPELINE_BUSY, PROBLEM_TYPES, Problem

log = get_logger(__name__)


# What is behind, by name (`outbox` or a queue's name), and by how many messages.
Reading = dict[str, int]


class PipelineBusy(Exception):
    """The pipeline stayed behind for the whole wait."""

    def __init__(self, behind: Reading, retry_after_s: int) -> None:
        super().__init__(f"the order pipeline is behind: {behind}")
        self.behind = behind
        self.retry_after_s = retry_after_s


@dataclass
class IntakeGate:
    """Open while every part of the pipeline is within `max_backlog` messages, as read every
    `interval_s` once started. `max_backlog` 0 turns the gate off."""

    max_backlog: int = 100
    wait_s: float = 10.0
    interval_s: float = 0.25
    _open: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _behind: Reading = field(default_factory=dict, init=False)
    _task: asyncio.Task[None] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self._open.set()

    @property
    def is_open(self) -> bool:
        return self._open.is_set()

    async def admit(self) -> None:
        """Return at once while the gate is open; otherwise wait for it, at most `wait_s`."""
        if self._open.is_set():
            return
        INTAKE_HELD.inc()
        try:
            await asyncio.wait_for(self._open.wait(), self.wait_s)
        except TimeoutError:
            INTAKE_REFUSED.inc()
            raise PipelineBusy(dict(self._behind), retry_after_s=max(1, round(self.wait_s))) from None

    def observe(self, reading: Reading) -> None:
        """Open or close the gate on one reading, and say so when it changes."""
        behind = {name: count for name, count in reading.items() if count > self.max_backlog}
        was_open = self._open.is_set()
        self._behind = behind
        if behind and was_open:
            self._open.clear()
            INTAKE_GATE_CLOSED.set(1)
            log.warning(
                "order pipeline behind; new orders wait for it", behind=behind, max_backlog=self.max_backlog
            )
        elif not behind and not was_open:
            self._open.set()
            INTAKE_GATE_CLOSED.set(0)
            log.info("order pipeline caught up; new orders go straight in")

    def start(self, read: Callable[[], Awaitable[Reading]]) -> None:
        """Watch the pipeline: `read` says how far behind each part of it is."""
        if self.max_backlog > 0:
            self._task = asyncio.create_task(self._watch(read), name="intake-gate")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._open.set()  # nobody waits on a gate that is no longer watched

    async def _watch(self, read: Callable[[], Awaitable[Reading]]) -> None:
        while True:
            try:
                reading = await read()
            except Exception:
                # Not knowing is not being behind: the gate opens rather than refuse on a guess.
                log.debug("could not read the order pipeline's backlog", exc_info=True)
                reading = {}
            self.observe(reading)
            await asyncio.sleep(self.interval_s)


async def admit_order(request: Request, who: SignedInEmployee) -> None:
    """The gate as a dependency of placing an order: after sign-in, before anything is stored."""
    gate: IntakeGate = request.app.state.intake_gate
    try:
        await gate.admit()
    except PipelineBusy as busy:
        log.warning(
            "order refused: the pipeline stayed behind",
            employee_id=str(who.employee_id),
            behind=busy.behind,
            waited_s=gate.wait_s,
        )
        kind = PROBLEM_TYPES[PIPELINE_BUSY]
        raise Problem(
            kind.status,
            f"Orders are being held back while the ones before them are provisioned; nothing was "
            f"stored. Try again in {busy.retry_after_s} s.",
            title=kind.title,
            type_=kind.uri,
            code=PIPELINE_BUSY,
            retry_after_s=busy.retry_after_s,
        ) from None


@dataclass
class PipelineBacklog:
    """Reads the backlog the gate acts on: the portal's unsent outbox rows (while the broker is
    connected) and the ready messages of each of the order pipeline's queues that has consumers,
    by a passive declare (no permission needed, one round trip per queue)."""

    connection: AbstractRobustConnection
    relay: OutboxRelay
    queues: Iterable[ServiceQueue]
    broker_connected: Callable[[], Awaitable[bool]]
    _channel: AbstractChannel | None = field(default=None, init=False)

    async def __call__(self) -> Reading:
        if not await self.broker_connected():
            return {}
        reading: Reading = {"outbox": (await self.relay.backlog())[0]}
        if self._channel is None or self._channel.is_closed:
            self._channel = await self.connection.channel(publisher_confirms=False)
        for queue in self.queues:
            declared = await self._channel.declare_queue(queue.name, passive=True, robust=False)  # type: ignore[call-arg]
            result = declared.declaration_result
            if result.consumer_count:
                reading[queue.name] = result.message_count or 0
        return reading

    async def close(self) -> None:
        if self._channel is not None and not self._channel.is_closed:
            with contextlib.suppress(aio_pika.exceptions.AMQPError, RuntimeError):
                await self._channel.close()
