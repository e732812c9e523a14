"""The provisioning rules without I/O: what each look at the carrier means, and when to look again."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from mport_shared.events import (
    OrderCompleted,
    OrderFailed,
    OrderFailureCode,
    OrderKind,
    OrderProgressed,
    OrderSubmitted,
)
from order_worker.adapters.carrier import CarrierOrder, CarrierOrderState
from order_worker.domain import (
    DEADLINE_PASSED_REASON,
    Phase,
    Provisioning,
    Rejected,
    Schedule,
    Seen,
    Unavailable,
    Unknown,
)

from .conftest import snapshot

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
SCHEDULE = Schedule(
    deadlines_s={kind: 3600.0 for kind in OrderKind} | {OrderKind.SIM_ORDER: 14 * 86_400.0},
    submit_first_s=1.0,
    submit_max_s=60.0,
    check_first_s=30.0,
    check_max_s=600.0,
    jitter=0.0,
)


def carrier(state: CarrierOrderState, *, expected: datetime | None = None, reason: str | None = None) -> Seen:
    return Seen(CarrierOrder(id="c-1", external_id="x", state=state, failure_reason=reason,
                             expected_completion=expected))  # fmt: skip


def observe(p: Provisioning, seen: object, *, at: datetime, scheduled: bool = True) -> None:
    p.observe(seen, now=at, schedule=SCHEDULE, rng=random.Random(1), scheduled=scheduled)  # type: ignore[arg-type]


def test_deadline_depends_on_the_kind_of_order() -> None:
    assert Provisioning.start(snapshot(placed_at=T0), SCHEDULE).deadline_at == T0 + timedelta(hours=1)
    assert Provisioning.start(
        snapshot(kind=OrderKind.SIM_ORDER, placed_at=T0), SCHEDULE
    ).deadline_at == T0 + timedelta(days=14)


def test_an_acknowledged_order_is_submitted_and_looked_up_later() -> None:
    p = Provisioning.start(snapshot(placed_at=T0), SCHEDULE)
    observe(p, carrier(CarrierOrderState.ACKNOWLEDGED), at=T0)
    assert p.phase is Phase.SUBMITTED
    assert p.carrier_order_id == "c-1"
    assert [type(e) for e in p.events] == [OrderSubmitted]
    assert p.next_check_at == T0 + timedelta(seconds=30)


def test_a_carrier_that_finishes_at_once_gives_the_outcome_alone() -> None:
    p = Provisioning.start(snapshot(placed_at=T0), SCHEDULE)
    observe(p, carrier(CarrierOrderState.COMPLETED), at=T0)
    assert p.phase is Phase.COMPLETED
    assert [type(e) for e in p.events] == [OrderCompleted]
    assert p.next_check_at is None


def test_submitting_retries_with_growing_delays_capped_until_the_deadline() -> None:
    p = Provisioning.start(snapshot(placed_at=T0), SCHEDULE)
    now, gaps = T0, []
    while p.phase is Phase.SUBMITTING:
        observe(p, Unavailable("503"), at=now)
        if p.next_check_at is None:
            break
        gaps.append((p.next_check_at - now).total_seconds())
        now = p.next_check_at
    assert gaps[:8] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert max(gaps) == 60
    assert p.phase is Phase.FAILED
    assert now == T0 + timedelta(hours=1)  # the last try was at the deadline, not after it
    failed = p.events[-1]
    assert isinstance(failed, OrderFailed)
    assert failed.reason_code is OrderFailureCode.CARRIER_UNREACHABLE


def test_an_order_back_soon_after_an_outage_goes_through_within_the_cap() -> None:
    p = Provisioning.start(snapshot(placed_at=T0), SCHEDULE)
    now = T0
    for _ in range(20):  # about ten minutes away
        observe(p, Unavailable("503"), at=now)
        assert p.next_check_at is not None
        now = p.next_check_at
    assert (p.next_check_at - T0) < timedelta(minutes=20)
    observe(p, carrier(CarrierOrderState.ACKNOWLEDGED), at=now)
    assert p.phase is Phase.SUBMITTED


def test_checks_grow_and_come_soon_after_the_expected_completion_date() -> None:
    p = Provisioning.start(snapshot(placed_at=T0), SCHEDULE)
    observe(p, carrier(CarrierOrderState.ACKNOWLEDGED), at=T0)
    gaps = []
    now = T0
    for _ in range(6):
        assert p.next_check_at is not None
        now = p.next_check_at
        observe(p, carrier(CarrierOrderState.IN_PROGRESS), at=now)
        assert p.next_check_at is not None
        gaps.append((p.next_check_at - now).total_seconds())
    assert gaps == [60, 120, 240, 480, 600, 600]
    q = Provisioning.start(snapshot(placed_at=T0), SCHEDULE)
    observe(q, carrier(CarrierOrderState.ACKNOWLEDGED, expected=T0 + timedelta(seconds=10)), at=T0)
    assert q.next_check_at == T0 + timedelta(seconds=15)


def test_a_notification_does_not_make_the_checks_sparser() -> None:
    p = Provisioning.start(snapshot(placed_at=T0), SCHEDULE)
    observe(p, carrier(CarrierOrderState.ACKNOWLEDGED), at=T0)
    observe(p, carrier(CarrierOrderState.IN_PROGRESS), at=T0 + timedelta(seconds=1), scheduled=False)
    assert p.check_interval_s == 30


def test_progress_is_told_once_per_change_the_employee_would_see() -> None:
    p = Provisioning.start(snapshot(placed_at=T0), SCHEDULE)
    observe(p, carrier(CarrierOrderState.ACKNOWLEDGED), at=T0)
    p.events.clear()
    observe(p, carrier(CarrierOrderState.IN_PROGRESS), at=T0 + timedelta(seconds=10))
    assert p.events == []  # still the carrier working on it
    assert p.carrier_state == "inProgress"
    later = T0 + timedelta(days=2)
    observe(p, carrier(CarrierOrderState.HELD, expected=later), at=T0 + timedelta(minutes=1))
    observe(p, carrier(CarrierOrderState.HELD, expected=later), at=T0 + timedelta(minutes=2))
    assert len(p.events) == 1
    progressed = p.events[0]
    assert isinstance(progressed, OrderProgressed)
    assert progressed.carrier_state == "held"
    assert progressed.expected_completion_at == later


@pytest.mark.parametrize(
    "state",
    [
        CarrierOrderState.FAILED,
        CarrierOrderState.REJECTED,
        CarrierOrderState.CANCELLED,
        CarrierOrderState.PARTIAL,
    ],
)
def test_carrier_end_states_other_than_completed_fail_the_order_uncharged(state: CarrierOrderState) -> None:
    p = Provisioning.start(snapshot(placed_at=T0), SCHEDULE)
    observe(p, carrier(CarrierOrderState.ACKNOWLEDGED), at=T0)
    observe(p, carrier(state, reason="Nummeret er sperret"), at=T0 + timedelta(minutes=1))
    assert p.phase is Phase.FAILED
    failed = p.events[-1]
    assert isinstance(failed, OrderFailed)
    assert failed.order.employee_charge.amount_ore == 0
    assert failed.reason_code is OrderFailureCode.CARRIER_REJECTED


def test_a_rejected_submission_fails_with_the_carriers_reason() -> None:
    p = Provisioning.start(snapshot(placed_at=T0), SCHEDULE)
    observe(p, Rejected("Unknown product offering 'X'"), at=T0)
    failed = p.events[-1]
    assert isinstance(failed, OrderFailed)
    assert failed.reason == "Unknown product offering 'X'"
    assert failed.carrier_order_id is None


def test_past_the_deadline_an_open_order_fails_with_a_reason_and_no_charge() -> None:
    p = Provisioning.start(snapshot(placed_at=T0), SCHEDULE)
    observe(p, carrier(CarrierOrderState.ACKNOWLEDGED), at=T0)
    observe(p, carrier(CarrierOrderState.IN_PROGRESS), at=T0 + timedelta(hours=1))
    assert p.phase is Phase.FAILED
    failed = p.events[-1]
    assert isinstance(failed, OrderFailed)
    assert failed.reason == DEADLINE_PASSED_REASON
    assert failed.reason_code is OrderFailureCode.CARRIER_DEADLINE_PASSED
    assert failed.order.employee_charge.amount_ore == 0
    assert failed.carrier_order_id == "c-1"


def test_the_carrier_completing_at_the_deadline_still_counts() -> None:
    p = Provisioning.start(snapshot(placed_at=T0), SCHEDULE)
    observe(p, carrier(CarrierOrderState.ACKNOWLEDGED), at=T0)
    observe(p, carrier(CarrierOrderState.COMPLETED), at=T0 + timedelta(hours=2))
    assert p.phase is Phase.COMPLETED


def test_an_order_the_carrier_lost_is_submitted_again_at_once() -> None:
    p = Provisioning.start(snapshot(placed_at=T0), SCHEDULE)
    observe(p, carrier(CarrierOrderState.ACKNOWLEDGED), at=T0)
    observe(p, Unknown("404"), at=T0 + timedelta(minutes=1))
    assert p.phase is Phase.SUBMITTING
    assert p.next_check_at == T0 + timedelta(minutes=1)


def test_a_finished_order_ignores_everything_after() -> None:
    p = Provisioning.start(snapshot(placed_at=T0), SCHEDULE)
    observe(p, carrier(CarrierOrderState.COMPLETED), at=T0)
    p.events.clear()
    observe(p, carrier(CarrierOrderState.FAILED), at=T0 + timedelta(minutes=1))
    observe(p, Unavailable("503"), at=T0 + timedelta(hours=3))
    assert p.phase is Phase.COMPLETED
    assert p.events == []
