"""Provisioning use cases: take an OrderPlaced to the carrier, check an open order, act on a
carrier notification. None of them holds a broker delivery while the carrier works."""

from __future__ import annotations

import asyncio
import random
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from mport_shared.events import Envelope, EventPayload, OrderPlaced, OrderSnapshot
from mport_shared.logging import get_logger
from mport_shared.messaging.consumer import PermanentFailure
from mport_shared.tracing import continued, current_traceparent

from order_worker import metrics
from order_worker.adapters.carrier import (
    TERMINAL_STATES,
    Carrier,
    CarrierOrderRequest,
    CarrierOrderUnknown,
    CarrierRejected,
    CarrierUnavailable,
    StateChangeNotice,
)
from order_worker.domain import (
    Observation,
    Phase,
    Provisioning,
    Rejected,
    Schedule,
    Seen,
    Unavailable,
    Unknown,
    stage_of,
)
from order_worker.store import Store, Stored

log = get_logger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class OrderProvisioning:
    store: Store
    carrier: Carrier
    schedule: Schedule
    # A first look this soon after submitting: a carrier that finishes at once (the simulator, a
    # fast real one) then costs one transaction instead of two. 0 turns it off.
    first_look_s: float = 0.005
    clock: Clock = utc_now
    rng: random.Random = field(default_factory=random.Random)
    # Called with a notice held back while its order was being recorded, once it is.
    on_notice_ready: Callable[[StateChangeNotice], None] | None = None
    # Carrier orders known to be finished, so their late notifications cost no database read.
    _finished: OrderedDict[str, None] = field(default_factory=OrderedDict)
    _finished_max: int = 10_000
    # Our orders between submitting and the record of what the carrier said: a notice about one
    # of them (the carrier may post it before its answer arrives) waits until the record is
    # committed, instead of finding no order.
    _recording: dict[str, StateChangeNotice | None] = field(default_factory=dict)
    # The first look pays off only with a carrier that finishes at once; with a slower one it is
    # a wasted read. So it is skipped while it keeps finding nothing, and tried now and then.
    _first_look_hits: float = 1.0
    _first_looks_skipped: int = 0
    # Open orders as this process last recorded them, by carrier order id, so that a notification
    # needs no database read to find its order. Only a cache: another worker may have changed the
    # order since, and then saving it finds so (its version) and reads it afresh.
    _open: OrderedDict[str, Stored] = field(default_factory=OrderedDict)
    _open_max: int = 20_000

    async def on_order_placed(self, envelope: Envelope[EventPayload]) -> None:
        """Submit to the carrier (idempotent by our order id), record what happened, and ack.

        A carrier that is away does not fail the message: the order is recorded as still to be
        submitted, and the reconciler tries again until the order's deadline."""
        if not isinstance(envelope.data, OrderPlaced):
            raise PermanentFailure(f"order-worker cannot provision a {type(envelope.data).__name__}")
        order = envelope.data.order
        order_id = str(order.order_id)
        if await self.store.exists(order_id):
            log.info("duplicate OrderPlaced ignored", order_id=order_id)
            return
        provisioning = Provisioning.start(order, self.schedule)
        self._recording[order_id] = None
        try:
            seen = await self._submit_in_time(provisioning)
            if isinstance(seen, Seen) and not seen.order.is_terminal and self._worth_a_first_look():
                await asyncio.sleep(self.first_look_s)
                again = await self._look(seen.order.id)
                if isinstance(again, Seen):
                    seen = again
                self._first_look_hits = 0.9 * self._first_look_hits + 0.1 * seen.order.is_terminal
            provisioning.observe(seen, now=self.clock(), schedule=self.schedule, rng=self.rng, scheduled=True)
            # The handler's span: the order's later events (the carrier's answer, in minutes or
            # days) join the trace under it.
            traced = current_traceparent()
            added = await self.store.add(provisioning, traceparent=traced)
        finally:
            waiting = self._recording.pop(order_id, None)
        if not added:
            log.info("duplicate OrderPlaced ignored", order_id=order_id)
            return
        self._log_outcome(provisioning)
        self._remember(Stored(provisioning=provisioning, traceparent=traced))
        if waiting is not None and provisioning.phase.is_open and self.on_notice_ready is not None:
            self.on_notice_ready(waiting)

    async def check(self, stored: Stored) -> None:
        """The due check of an open order (under its lease): submit again, or look it up. Its
        carrier calls join the order's trace."""
        provisioning = stored.provisioning
        with continued(stored.traceparent):
            if provisioning.phase is Phase.SUBMITTING:
                seen = await self._submit_in_time(provisioning)
            else:
                assert provisioning.carrier_order_id is not None
                seen = await self._look(provisioning.carrier_order_id)
        await self._record(stored, seen, scheduled=True)

    async def on_notice(self, notice: StateChangeNotice) -> None:
        """A notification says a carrier order changed. Believe only the carrier's own answer to a
        read of that order, and only for the order whose externalId it carries."""
        carrier_order_id = notice.carrier_order_id
        if carrier_order_id in self._finished:
            metrics.NOTIFICATIONS.labels("finished").inc()
            return
        for order_id in notice.external_ids:
            if order_id in self._recording:
                self._recording[order_id] = notice
                return
        stored = self._open.get(carrier_order_id) or await self.store.by_carrier_order_id(carrier_order_id)
        if stored is None:
            # Not recorded under this carrier id yet (a submit whose answer was lost): by our id.
            for order_id in notice.external_ids:
                candidate = await self.store.get(order_id)
                if candidate is not None and candidate.provisioning.carrier_order_id in (
                    None,
                    carrier_order_id,
                ):
                    stored = candidate
                    break
        if stored is None:
            metrics.NOTIFICATIONS.labels("unknown").inc()
            log.info("notification for a carrier order we do not know", carrier_order_id=carrier_order_id)
            return
        provisioning = stored.provisioning
        if not provisioning.phase.is_open:
            self._remember_finished(carrier_order_id)
            metrics.NOTIFICATIONS.labels("finished").inc()
            return
        claimed = notice.claimed_state
        if (
            claimed is not None
            and claimed not in TERMINAL_STATES
            and stage_of(claimed.value) == stage_of(provisioning.carrier_state)
            and notice.claimed_expected_completion == provisioning.expected_completion_at
        ):
            metrics.NOTIFICATIONS.labels("no_change").inc()
            return  # nothing is even claimed that the employee would see differently
        seen = await self._look(carrier_order_id)
        if isinstance(seen, Seen) and seen.order.external_id != str(provisioning.order.order_id):
            metrics.NOTIFICATIONS.labels("mismatched").inc()
            log.warning(
                "notification names a carrier order that is not this order's; ignored",
                order_id=str(provisioning.order.order_id),
                carrier_order_id=carrier_order_id,
            )
            return
        if not isinstance(seen, Seen):
            metrics.NOTIFICATIONS.labels("unconfirmed").inc()
            return  # the carrier cannot say now; the order's next check will
        if claimed is not None and claimed in TERMINAL_STATES and not seen.order.is_terminal:
            metrics.NOTIFICATIONS.labels("contradicted").inc()
            log.warning(
                "notification claims a state the carrier does not confirm",
                order_id=str(provisioning.order.order_id),
                claimed=claimed.value,
                confirmed=seen.order.state.value,
            )
        else:
            metrics.NOTIFICATIONS.labels("confirmed").inc()
        await self._record(stored, seen, scheduled=False)

    async def _record(self, stored: Stored, seen: Observation, *, scheduled: bool) -> None:
        """Apply an observation and save it; if the order changed under us, apply it to the order
        as it is now (a notification and a check, or two workers, may race: one change wins)."""
        for _ in range(5):
            provisioning = stored.provisioning
            provisioning.observe(
                seen, now=self.clock(), schedule=self.schedule, rng=self.rng, scheduled=scheduled
            )
            if await self.store.save(stored):
                self._log_outcome(provisioning)
                self._remember(stored)
                return
            if provisioning.carrier_order_id is not None:
                self._open.pop(provisioning.carrier_order_id, None)  # stale, and changed by us since
            again = await self.store.get(str(provisioning.order.order_id))
            if again is None or not again.provisioning.phase.is_open:
                return
            stored = again
        log.warning("order kept changing while being recorded; its next check will retry",
                    order_id=str(stored.provisioning.order.order_id))  # fmt: skip

    async def _submit_in_time(self, provisioning: Provisioning) -> Observation:
        """Submit, unless the order's deadline has passed: then it fails without ever reaching the
        carrier (an OrderPlaced replayed days late must not provision what is reported failed)."""
        if self.clock() >= provisioning.deadline_at:
            return Unavailable("the order's deadline passed before the carrier took it")
        return await self._submit(provisioning.order)

    async def _submit(self, order: OrderSnapshot) -> Observation:
        started = asyncio.get_running_loop().time()
        try:
            seen: Observation = Seen(await self.carrier.submit(_carrier_request(order)))
        except CarrierRejected as exc:
            seen = Rejected(exc.reason)
        except CarrierUnavailable as exc:
            seen = Unavailable(str(exc))
        metrics.observe_call("submit", seen, asyncio.get_running_loop().time() - started)
        return seen

    async def _look(self, carrier_order_id: str) -> Observation:
        started = asyncio.get_running_loop().time()
        try:
            seen: Observation = Seen(await self.carrier.get(carrier_order_id))
        except CarrierOrderUnknown as exc:
            seen = Unknown(str(exc))
        except CarrierUnavailable as exc:
            seen = Unavailable(str(exc))
        except CarrierRejected as exc:
            # A read that is refused says nothing about the order itself.
            seen = Unavailable(f"the carrier refused to show the order: {exc.reason}")
        metrics.observe_call("get", seen, asyncio.get_running_loop().time() - started)
        return seen

    def _worth_a_first_look(self) -> bool:
        if self.first_look_s <= 0:
            return False
        if self._first_look_hits >= 0.2:
            return True
        self._first_looks_skipped += 1
        return self._first_looks_skipped % 20 == 0

    def _remember(self, stored: Stored) -> None:
        carrier_order_id = stored.provisioning.carrier_order_id
        if carrier_order_id is None:
            return
        if stored.provisioning.phase.is_open:
            self._open[carrier_order_id] = stored
            self._open.move_to_end(carrier_order_id)
            if len(self._open) > self._open_max:
                self._open.popitem(last=False)
        else:
            self._open.pop(carrier_order_id, None)
            self._remember_finished(carrier_order_id)

    def _remember_finished(self, carrier_order_id: str) -> None:
        self._finished[carrier_order_id] = None
        if len(self._finished) > self._finished_max:
            self._finished.popitem(last=False)

    @staticmethod
    def _log_outcome(provisioning: Provisioning) -> None:
        order_id = str(provisioning.order.order_id)
        match provisioning.phase:
            case Phase.COMPLETED:
                log.info("order completed", order_id=order_id, carrier_order_id=provisioning.carrier_order_id)
            case Phase.FAILED:
                log.info(
                    "order failed",
                    order_id=order_id,
                    reason=provisioning.failure_reason,
                    code=provisioning.failure_code,
                )
            case Phase.SUBMITTING:
                log.warning(
                    "carrier did not take the order; trying again later",
                    order_id=order_id,
                    attempts=provisioning.attempts,
                    next_check_at=_iso(provisioning.next_check_at),
                    reason=provisioning.last_error,
                )
            case Phase.SUBMITTED:
                log.info(
                    "order with the carrier",
                    order_id=order_id,
                    carrier_order_id=provisioning.carrier_order_id,
                    carrier_state=provisioning.carrier_state,
                    next_check_at=_iso(provisioning.next_check_at),
                )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _carrier_request(order: OrderSnapshot) -> CarrierOrderRequest:
    return CarrierOrderRequest(
        order_id=str(order.order_id),
        msisdn=order.msisdn,
        product_offering_id=order.carrier_product_code,
        action=order.action,
        characteristics=dict(order.details),
    )
