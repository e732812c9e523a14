"""The deduction rules, without I/O: examples, then properties over any sequence of events."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mport_shared.events import Billing, DeductionLineKind, OrderKind, OrderSnapshot
from payroll_worker import domain
from payroll_worker.domain import line_id, next_period, period_of

from .conftest import COMPANY, completed, failed, snapshot
from .fakes import Ledger

DEC_1 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def test_periods_are_oslo_months() -> None:
    # 23:30 UTC on 30 November is already 1 December in Oslo.
    assert period_of(datetime(2026, 11, 30, 23, 30, tzinfo=UTC)) == "2026-12"
    assert period_of(datetime(2026, 11, 30, 22, 59, tzinfo=UTC)) == "2026-11"
    assert next_period("2026-12") == "2027-01"
    assert domain.periods_between("2026-11", "2027-02") == ["2026-11", "2026-12", "2027-01", "2027-02"]


def test_a_one_off_charge_is_one_line_in_the_period_it_completed() -> None:
    ledger = Ledger()
    order = snapshot(amount_ore=4_900)
    [recorded] = ledger.completed(completed(order, DEC_1)).lines
    line = recorded.line
    assert line.kind is DeductionLineKind.ONE_OFF
    assert (line.period, line.amount_ore, line.wage_type, line.employee_number) == (
        "2026-12",
        4_900,
        "7100",
        "1001",
    )
    assert line.text == "Ekstra Data 15GB 01.12.2026"
    assert line.line_id == line_id(order.order_id, DeductionLineKind.ONE_OFF, "2026-12")
    assert order.consent is not None
    assert line.consent_id == order.consent.consent_id
    assert ledger.completed(completed(order, DEC_1)).lines == []  # the same event again


def test_nothing_to_pay_no_line_and_a_missing_wage_type_takes_the_default() -> None:
    ledger = Ledger()
    assert ledger.completed(completed(snapshot(amount_ore=0), DEC_1)).lines == []
    [recorded] = ledger.completed(completed(snapshot(wage_type=None), DEC_1)).lines
    assert recorded.line.wage_type == "7000"


def test_a_monthly_service_is_charged_at_each_close_until_it_ends() -> None:
    ledger = Ledger()
    sky = snapshot(amount_ore=2_950, billing=Billing.MONTHLY, product_code="min_sky", product_name="Min Sky")
    assert ledger.completed(completed(sky, DEC_1)).lines == []
    [december] = ledger.close("2026-12").lines
    assert (december.line.kind, december.line.amount_ore, december.line.text) == (
        DeductionLineKind.MONTHLY,
        2_950,
        "Min Sky 12.2026",
    )
    assert ledger.close("2026-12").lines == []  # closing twice changes nothing
    ending = snapshot(amount_ore=0, action="delete", ends_order_id=sky.order_id, product_code="min_sky")
    ledger.completed(completed(ending, datetime(2027, 1, 10, tzinfo=UTC)))
    [january] = ledger.close("2027-01").lines  # ended in January: January still charged
    assert january.line.period == "2027-01"
    assert ledger.close("2027-02").lines == []


def test_an_ending_before_its_service_completes_still_ends_it() -> None:
    ledger = Ledger()
    sky = snapshot(amount_ore=2_950, billing=Billing.MONTHLY)
    ending = snapshot(amount_ore=0, action="delete", ends_order_id=sky.order_id)
    ledger.completed(completed(ending, DEC_1 + timedelta(days=1)))
    ledger.completed(completed(sky, DEC_1))
    assert [r.line.period for r in ledger.close("2027-01").lines] == ["2026-12"]


def test_of_two_endings_before_their_service_the_earlier_holds() -> None:
    # Found by the property below: the later ending arrived first and was kept.
    ledger = Ledger()
    sky = snapshot(amount_ore=2_950, billing=Billing.MONTHLY)
    late = snapshot(amount_ore=0, action="delete", ends_order_id=sky.order_id)
    early = snapshot(amount_ore=0, action="delete", ends_order_id=sky.order_id)
    ledger.completed(completed(late, datetime(2027, 1, 10, tzinfo=UTC)))
    ledger.completed(completed(early, DEC_1 + timedelta(days=1)))
    ledger.completed(completed(sky, DEC_1))
    assert [r.line.period for r in ledger.close("2027-01").lines] == ["2026-12"]


def test_an_ending_of_another_employees_service_ends_nothing() -> None:
    sky = snapshot(amount_ore=2_950, billing=Billing.MONTHLY)
    other = snapshot(amount_ore=0, action="delete", ends_order_id=sky.order_id, employee_id=uuid.uuid4())
    book = domain.Book(
        services={
            sky.order_id: domain.on_completed(
                completed(sky, DEC_1), domain.Book(), default_wage_type="7000"
            ).services[0]
        }
    )
    changes = domain.on_completed(completed(other, DEC_1), book, default_wage_type="7000")
    assert (changes.ending, changes.services, changes.lines) == (None, [], [])


def test_an_ending_after_later_closes_reverses_what_it_should_not_have_charged() -> None:
    ledger = Ledger()
    sky = snapshot(amount_ore=2_950, billing=Billing.MONTHLY)
    ledger.completed(completed(sky, DEC_1))
    assert len(ledger.close("2027-02").lines) == 3  # December, January, February
    ending = snapshot(amount_ore=0, action="delete", ends_order_id=sky.order_id)
    # Ended in December: January and February were charged by mistake, and are reversed.
    reversals = ledger.completed(completed(ending, datetime(2026, 12, 20, tzinfo=UTC))).lines
    assert {r.reverses_line_id for r in reversals} == {
        line_id(sky.order_id, DeductionLineKind.MONTHLY, p) for p in ("2027-01", "2027-02")
    }
    for reversal in reversals:
        assert reversal.line.kind is DeductionLineKind.REVERSAL
        assert reversal.line.amount_ore == -2_950
        assert reversal.line.period == "2027-03"  # the first open period
    assert len(ledger.completed(completed(ending, datetime(2026, 12, 20, tzinfo=UTC))).lines) == 0


def test_a_failed_order_is_charged_nothing_whichever_event_comes_first() -> None:
    ledger = Ledger()
    early = snapshot()
    ledger.failed_(failed(early, DEC_1))
    assert ledger.completed(completed(early, DEC_1)).lines == []
    late = snapshot()
    [charged] = ledger.completed(completed(late, DEC_1)).lines
    [reversal] = ledger.failed_(failed(late, DEC_1)).lines
    assert reversal.line.amount_ore == -charged.line.amount_ore
    assert reversal.reverses_line_id == charged.line.line_id
    assert ledger.failed_(failed(late, DEC_1)).lines == []


def test_an_event_for_a_closed_period_lands_in_the_next_open_one_and_says_so() -> None:
    ledger = Ledger()
    ledger.close("2026-12")
    [recorded] = ledger.completed(completed(snapshot(), DEC_1)).lines
    assert recorded.line.period == "2027-01"
    assert recorded.moved_from == "2026-12"
    assert recorded.line.text == "Ekstra Data 15GB 01.12.2026 (overført fra 12.2026)"


def test_a_new_plan_ends_the_previous_plans_difference() -> None:
    ledger = Ledger()
    d = snapshot(
        amount_ore=10_000,
        billing=Billing.MONTHLY,
        kind=OrderKind.PLAN,
        action="modify",
        product_code="bedrift_total_d",
        product_name="Bedrift Total D",
    )
    e = snapshot(
        amount_ore=20_000,
        billing=Billing.MONTHLY,
        kind=OrderKind.PLAN,
        action="modify",
        product_code="bedrift_total_e",
        product_name="Bedrift Total E",
    )
    ledger.completed(completed(d, DEC_1))
    ledger.close("2026-12")
    ledger.completed(completed(e, datetime(2027, 1, 15, tzinfo=UTC)))
    [january] = ledger.close("2027-01").lines
    assert (january.line.order_id, january.line.amount_ore) == (e.order_id, 20_000)
    # Back to a plan the employer covers: no difference at all from then on.
    c = snapshot(amount_ore=0, billing=Billing.MONTHLY, kind=OrderKind.PLAN, action="modify")
    ledger.completed(completed(c, datetime(2027, 2, 2, tzinfo=UTC)))
    assert ledger.close("2027-02").lines == []


def test_plans_arriving_out_of_order_still_let_the_later_one_win() -> None:
    ledger = Ledger()
    d = snapshot(amount_ore=10_000, billing=Billing.MONTHLY, kind=OrderKind.PLAN, action="modify")
    e = snapshot(amount_ore=20_000, billing=Billing.MONTHLY, kind=OrderKind.PLAN, action="modify")
    ledger.completed(completed(e, datetime(2026, 12, 20, tzinfo=UTC)))
    ledger.completed(completed(d, datetime(2026, 12, 5, tzinfo=UTC)))  # earlier, but arrives later
    [december] = ledger.close("2026-12").lines
    assert (december.line.order_id, december.line.amount_ore) == (e.order_id, 20_000)


def test_another_employees_plan_ends_nothing_of_mine() -> None:
    ledger = Ledger()
    mine = snapshot(amount_ore=10_000, billing=Billing.MONTHLY, kind=OrderKind.PLAN, action="modify")
    theirs = snapshot(
        amount_ore=20_000, billing=Billing.MONTHLY, kind=OrderKind.PLAN, action="modify",
        employee_id=uuid.uuid4(), employee_number="1002",
    )  # fmt: skip
    ledger.completed(completed(mine, DEC_1))
    ledger.completed(completed(theirs, DEC_1 + timedelta(days=1)))
    assert sorted(r.line.amount_ore for r in ledger.close("2026-12").lines) == [10_000, 20_000]


# ---- properties ---------------------------------------------------------------------------

EMPLOYEES = {"1001": uuid.UUID(int=1001), "1002": uuid.UUID(int=1002)}
START = datetime(2026, 10, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Plan:
    """An order and how it ends: completed, failed, or completed and then failed (a mistake)."""

    what: str  # one_off | monthly | plan | ending
    employee: str
    amount: int
    day: int
    outcome: str  # completed | failed | mistaken
    ends: int  # for an ending: the index of the monthly order it ends


order_plans = st.builds(
    Plan,
    what=st.sampled_from(["one_off", "monthly", "plan", "ending"]),
    employee=st.sampled_from(sorted(EMPLOYEES)),
    amount=st.sampled_from([0, 4_900, 2_950, 10_000]),
    day=st.integers(0, 150),
    outcome=st.sampled_from(["completed", "completed", "completed", "failed", "mistaken"]),
    ends=st.integers(0, 20),
)


Order = tuple[OrderSnapshot, datetime, str]


def build(
    plans: list[Plan], closes: list[int], *, company_id: uuid.UUID = COMPANY
) -> tuple[list[Order], list[tuple[str, int]]]:
    """The orders the plans describe (ids from their index, so the same plans give the same
    orders), and the events they make: a completion, a failure or both, and the closes."""
    orders: list[Order] = []
    events: list[tuple[str, int]] = []
    for i, p in enumerate(plans):
        # An employee ends one of their own monthly services (the portal offers no other).
        monthly = [j for j, q in enumerate(plans) if q.what == "monthly" and q.employee == p.employee]
        if p.what == "ending" and not monthly:
            p = Plan("one_off", p.employee, p.amount, p.day, p.outcome, 0)
        # Plans and endings are never mistaken: a carrier never fails what it completed.
        outcome = "completed" if p.outcome == "mistaken" and p.what in ("plan", "ending") else p.outcome
        ends = uuid.uuid5(company_id, str(monthly[p.ends % len(monthly)])) if p.what == "ending" else None
        snap = snapshot(
            order_id=uuid.uuid5(company_id, str(i)),
            employee_id=EMPLOYEES[p.employee],
            employee_number=p.employee,
            amount_ore=0 if p.what == "ending" else p.amount,
            billing=Billing.ONE_OFF if p.what == "one_off" else Billing.MONTHLY,
            kind=OrderKind.PLAN if p.what == "plan" else OrderKind.ADDON,
            action={"plan": "modify", "ending": "delete"}.get(p.what, "add"),
            ends_order_id=ends,
            company_id=company_id,
        )
        at = START + timedelta(days=p.day, hours=i)
        orders.append((snap, at, outcome))
        if outcome in ("completed", "mistaken"):
            events.append(("completed", i))
        if outcome in ("failed", "mistaken"):
            events.append(("failed", i))
    events += [("close", c) for c in closes]
    return orders, events


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    plans=st.lists(order_plans, min_size=1, max_size=12),
    closes=st.lists(st.integers(0, 6), max_size=4),
    data=st.data(),
)
def test_lines_sum_to_what_the_charges_say_and_nothing_is_charged_twice(
    plans: list[Plan], closes: list[int], data: st.DataObject
) -> None:
    orders, events = build(plans, closes)
    sequence = data.draw(st.permutations(events))
    # A mistaken order's failure may come before or after its completion; any event may come twice.
    sequence += data.draw(st.lists(st.sampled_from(events), max_size=3)) if events else []

    ledger = Ledger()
    model = Model()
    for event, index in sequence:
        if event == "close":
            period = periods_from_start(index)
            ledger.close(period)
            model.close(period)
            continue
        snap, at, _ = orders[index]
        if event == "completed":
            ledger.completed(completed(snap, at))
            model.completed(snap.order_id, at, ledger_last_closed=model.last_closed)
        else:
            ledger.failed_(failed(snap, at + timedelta(hours=1)))
            model.failed(snap.order_id)

    expected = model.expected(orders)
    lines = list(ledger.lines.values())
    by_id = {r.line.line_id: r for r in lines}
    attributed: dict[tuple[str, str], int] = {}
    per_order: dict[tuple[uuid.UUID, str], int] = {}
    for r in lines:
        # A reversal counts against the period of the line it reverses.
        period = by_id[r.reverses_line_id].line.period if r.reverses_line_id else r.line.period
        key = (r.line.employee_number, period)
        attributed[key] = attributed.get(key, 0) + r.line.amount_ore
        per_order[(r.line.order_id, period)] = per_order.get((r.line.order_id, period), 0) + r.line.amount_ore
    assert {k: v for k, v in attributed.items() if v} == expected
    amounts = {snap.order_id: snap.employee_charge.amount_ore for snap, _, _ in orders}
    for (order_id, _), net in per_order.items():
        assert net in (0, amounts[order_id]), "an order charged twice in a period"
    reversed_ids = [r.reverses_line_id for r in lines if r.reverses_line_id]
    assert len(reversed_ids) == len(set(reversed_ids)), "a line reversed twice"
    assert all(by_id[i].line.kind is not DeductionLineKind.REVERSAL for i in reversed_ids)


def periods_from_start(index: int) -> str:
    period = period_of(START)
    for _ in range(index):
        period = next_period(period)
    return period


class Model:
    """The rules said plainly, independent of the implementation: what each order should cost,
    in which period, once every event has arrived."""

    def __init__(self) -> None:
        self.last_closed: str | None = None
        self.starts: dict[uuid.UUID, str] = {}  # landing period of each first completion
        self.failed_ids: set[uuid.UUID] = set()
        self.completed_ids: set[uuid.UUID] = set()

    def close(self, period: str) -> None:
        self.last_closed = max(self.last_closed or period, period)

    def completed(self, order_id: uuid.UUID, at: datetime, *, ledger_last_closed: str | None) -> None:
        if order_id in self.completed_ids:
            return
        self.completed_ids.add(order_id)
        period = period_of(at)
        if self.last_closed is not None and period <= self.last_closed:
            period = next_period(self.last_closed)
        self.starts[order_id] = period

    def failed(self, order_id: uuid.UUID) -> None:
        self.failed_ids.add(order_id)

    def expected(self, orders: list[tuple[object, datetime, str]]) -> dict[tuple[str, str], int]:
        totals: dict[tuple[str, str], int] = {}
        ok = {o.order_id for o, _, outcome in orders if outcome == "completed"}  # type: ignore[attr-defined]

        def add(employee: str, period: str, amount: int) -> None:
            if amount:
                totals[(employee, period)] = totals.get((employee, period), 0) + amount

        endings: dict[uuid.UUID, str] = {}
        for snap, at, _ in orders:
            if snap.order_id in ok and snap.action == "delete":  # type: ignore[attr-defined]
                endings[snap.ends_order_id] = min(  # type: ignore[attr-defined]
                    endings.get(snap.ends_order_id, "9999-12"),
                    next_period(period_of(at)),  # type: ignore[attr-defined]
                )
        plans = sorted(
            (
                (at, str(snap.order_id), snap)
                for snap, at, _ in orders
                if snap.order_id in ok and snap.kind is OrderKind.PLAN
            ),  # type: ignore[attr-defined]
        )
        plan_ends: dict[uuid.UUID, str] = {}
        for n, (_, _, snap) in enumerate(plans):
            later = [
                self.starts[s.order_id]
                for _, _, s in plans[n + 1 :]
                if s.employee_number == snap.employee_number
            ]
            if later:
                plan_ends[snap.order_id] = min(later)
        for snap, _, _ in orders:
            if snap.order_id not in ok or snap.action == "delete":  # type: ignore[attr-defined]
                continue
            charge = snap.employee_charge  # type: ignore[attr-defined]
            start = self.starts[snap.order_id]  # type: ignore[attr-defined]
            if charge.billing is Billing.ONE_OFF:
                add(snap.employee_number, start, charge.amount_ore)  # type: ignore[attr-defined]
                continue
            end = min(endings.get(snap.order_id, "9999-12"), plan_ends.get(snap.order_id, "9999-12"))  # type: ignore[attr-defined]
            if self.last_closed is None:
                continue
            for period in domain.periods_between(start, self.last_closed):
                if period < end:
                    add(snap.employee_number, period, charge.amount_ore)  # type: ignore[attr-defined]
        return totals
