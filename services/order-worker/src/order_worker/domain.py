"""Provisioning one order with the carrier, as rules without I/O: what each observation of the
carrier means for the order, which events it gives, and when to look again."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from mport_shared.events import (
    EmployeeCharge,
    EventPayload,
    OrderCompleted,
    OrderFailed,
    OrderFailureCode,
    OrderKind,
    OrderProgressed,
    OrderSnapshot,
    OrderSubmitted,
)

from order_worker.adapters.carrier import CarrierOrder, CarrierOrderState


class Phase(StrEnum):
    """Where our order stands with the carrier."""

    SUBMITTING = "submitting"  # not yet accepted by the carrier: submitting again later
    SUBMITTED = "submitted"  # the carrier has it: waiting for a notification or the next check
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def is_open(self) -> bool:
        return self in (Phase.SUBMITTING, Phase.SUBMITTED)


OPEN_PHASES = (Phase.SUBMITTING.value, Phase.SUBMITTED.value)

# TMF622 states that end a carrier order without provisioning it. `partial` is among them: our
# orders have one item, so a partly done order did not do what was ordered.
_FAILED_STATES = frozenset(
    {
        CarrierOrderState.FAILED,
        CarrierOrderState.REJECTED,
        CarrierOrderState.CANCELLED,
        CarrierOrderState.PARTIAL,
    }
)


class Stage(StrEnum):
    """What an open carrier order's state means to the employee waiting for it."""

    WORKING = "working"  # acknowledged, inProgress
    WAITING = "waiting"  # pending, held: the carrier waits for something
    CANCELLING = "cancelling"


_STAGES = {
    CarrierOrderState.PENDING.value: Stage.WAITING,
    CarrierOrderState.HELD.value: Stage.WAITING,
    CarrierOrderState.ASSESSING_CANCELLATION.value: Stage.CANCELLING,
    CarrierOrderState.PENDING_CANCELLATION.value: Stage.CANCELLING,
}


def stage_of(carrier_state: str | None) -> Stage:
    return _STAGES.get(carrier_state or "", Stage.WORKING)


DEADLINE_PASSED_REASON = "The carrier did not finish the order before its deadline."
UNREACHABLE_REASON = "The carrier could not be reached to take the order before its deadline."


@dataclass(frozen=True, slots=True, kw_only=True)
class Schedule:
    """How long an order may take and how often to try or look: from the settings."""

    deadlines_s: dict[OrderKind, float]
    # Submitting while the carrier is away: first retry after `submit_first_s`, then doubling,
    # never more than `submit_max_s` apart, so an order goes through soon after the carrier is back.
    submit_first_s: float = 1.0
    submit_max_s: float = 60.0
    # Looking up an order no notification has finished: first after `check_first_s`, then doubling
    # up to `check_max_s`; and soon after the carrier's own expected completion date.
    check_first_s: float = 30.0
    check_max_s: float = 900.0
    expected_slack_s: float = 5.0
    jitter: float = 0.1  # ± share of each delay, so orders that failed together spread out

    def deadline_for(self, order: OrderSnapshot) -> datetime:
        return order.placed_at + timedelta(seconds=self.deadlines_s[order.kind])


# What a look at the carrier found.
@dataclass(frozen=True, slots=True)
class Seen:
    """The carrier order as the carrier answered (to a submit or a read)."""

    order: CarrierOrder


@dataclass(frozen=True, slots=True)
class Rejected:
    """The carrier refused the submission itself (a business failure)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Unavailable:
    """The carrier could not answer now."""

    error: str


@dataclass(frozen=True, slots=True)
class Unknown:
    """The carrier does not know an order it acknowledged before: submit again (idempotent)."""

    error: str


Observation = Seen | Rejected | Unavailable | Unknown


@dataclass(slots=True, kw_only=True)
class Provisioning:
    """One order's provisioning: the aggregate the order-worker keeps per order."""

    order: OrderSnapshot
    deadline_at: datetime
    phase: Phase = Phase.SUBMITTING
    carrier_order_id: str | None = None
    carrier_state: str | None = None
    expected_completion_at: datetime | None = None
    attempts: int = 0
    check_interval_s: float = 0.0
    next_check_at: datetime | None = None
    last_error: str | None = None
    failure_reason: str | None = None
    failure_code: OrderFailureCode | None = None
    finished_at: datetime | None = None
    version: int = 0
    events: list[EventPayload] = field(default_factory=list)

    @classmethod
    def start(cls, order: OrderSnapshot, schedule: Schedule) -> Provisioning:
        return cls(order=order, deadline_at=schedule.deadline_for(order))

    def observe(
        self, seen: Observation, *, now: datetime, schedule: Schedule, rng: random.Random, scheduled: bool
    ) -> None:
        """Apply one observation of the carrier; events to publish are appended to `events`.

        `scheduled` says the look was this order's due check (intervals grow), not a notification."""
        if not self.phase.is_open:
            return
        match seen:
            case Seen(order=carrier_order):
                self._seen(carrier_order, now=now, schedule=schedule, rng=rng, scheduled=scheduled)
            case Rejected(reason=reason):
                self._fail(reason, OrderFailureCode.CARRIER_REJECTED, now=now)
            case Unknown(error=error) if self.phase is Phase.SUBMITTED:
                # Back to submitting, at once: the same externalId finds or remakes the order.
                self.phase = Phase.SUBMITTING
                self.last_error = error
                self.attempts = 0
                self.next_check_at = now
            case Unavailable(error=error) | Unknown(error=error):
                self.last_error = error
                if now >= self.deadline_at:
                    self._fail_by_deadline(now)
                elif self.phase is Phase.SUBMITTING:
                    self.attempts += 1
                    delay = min(schedule.submit_max_s, schedule.submit_first_s * 2 ** (self.attempts - 1))
                    self._check_again(now, _jittered(delay, schedule.jitter, rng))
                else:
                    self._check_again_later(now, schedule=schedule, rng=rng, grow=scheduled)

    def _seen(
        self,
        carrier_order: CarrierOrder,
        *,
        now: datetime,
        schedule: Schedule,
        rng: random.Random,
        scheduled: bool,
    ) -> None:
        self.last_error = None
        was_submitting = self.phase is Phase.SUBMITTING
        old_stage, old_expected = stage_of(self.carrier_state), self.expected_completion_at
        self.carrier_order_id = carrier_order.id
        self.carrier_state = carrier_order.state.value
        self.expected_completion_at = carrier_order.expected_completion
        if carrier_order.state is CarrierOrderState.COMPLETED:
            # A carrier that finished at once needs no OrderSubmitted before its OrderCompleted:
            # the outcome says all of it, in one message instead of two.
            self.phase = Phase.COMPLETED
            self._finish(now)
            self.events.append(
                OrderCompleted(order=self.order, carrier_order_id=carrier_order.id, completed_at=now)
            )
            return
        if carrier_order.state in _FAILED_STATES:
            reason = carrier_order.failure_reason or f"The carrier order ended {carrier_order.state.value}."
            self._fail(reason, OrderFailureCode.CARRIER_REJECTED, now=now)
            return
        if was_submitting:
            self.phase = Phase.SUBMITTED
            self.check_interval_s = 0.0
            self.events.append(
                OrderSubmitted(
                    order_id=self.order.order_id,
                    carrier_order_id=carrier_order.id,
                    submitted_at=now,
                    carrier_state=carrier_order.state.value,
                    expected_completion_at=carrier_order.expected_completion,
                )
            )
        elif stage_of(self.carrier_state) != old_stage or self.expected_completion_at != old_expected:
            # Only what the employee would see differently is told: acknowledged becoming
            # inProgress is the carrier working on it, as before.
            self.events.append(
                OrderProgressed(
                    order_id=self.order.order_id,
                    carrier_order_id=carrier_order.id,
                    carrier_state=carrier_order.state.value,
                    expected_completion_at=carrier_order.expected_completion,
                    progressed_at=now,
                )
            )
        if now >= self.deadline_at:
            self._fail_by_deadline(now)
        else:
            self._check_again_later(now, schedule=schedule, rng=rng, grow=scheduled)

    def _check_again_later(
        self, now: datetime, *, schedule: Schedule, rng: random.Random, grow: bool
    ) -> None:
        if self.check_interval_s <= 0:
            self.check_interval_s = schedule.check_first_s
        elif grow:
            self.check_interval_s = min(schedule.check_max_s, self.check_interval_s * 2)
        delay = _jittered(self.check_interval_s, schedule.jitter, rng)
        expected = self.expected_completion_at
        if expected is not None:
            # The carrier said when it would be done: look then, if that is sooner.
            soon_after = (expected - now).total_seconds() + schedule.expected_slack_s
            if 0 < soon_after < delay:
                delay = soon_after
        self._check_again(now, delay)

    def _check_again(self, now: datetime, delay_s: float) -> None:
        # Never later than the deadline: the order gets its last look then.
        self.next_check_at = min(now + timedelta(seconds=delay_s), self.deadline_at)

    def _fail_by_deadline(self, now: datetime) -> None:
        if self.phase is Phase.SUBMITTING:
            self._fail(UNREACHABLE_REASON, OrderFailureCode.CARRIER_UNREACHABLE, now=now)
        else:
            self._fail(DEADLINE_PASSED_REASON, OrderFailureCode.CARRIER_DEADLINE_PASSED, now=now)

    def _fail(self, reason: str, code: OrderFailureCode, *, now: datetime) -> None:
        self.phase = Phase.FAILED
        self.failure_reason = reason
        self.failure_code = code
        self._finish(now)
        # Nothing is charged for an order that failed, whatever it would have cost.
        uncharged = self.order.model_copy(
            update={
                "employee_charge": EmployeeCharge(amount_ore=0, billing=self.order.employee_charge.billing)
            }
        )
        self.events.append(
            OrderFailed(
                order=uncharged,
                carrier_order_id=self.carrier_order_id,
                reason=reason,
                reason_code=code,
                failed_at=now,
            )
        )

    def _finish(self, now: datetime) -> None:
        self.finished_at = now
        self.next_check_at = None


def _jittered(delay_s: float, jitter: float, rng: random.Random) -> float:
    return delay_s * (1 + rng.uniform(-jitter, jitter)) if jitter else delay_s
