"""The deduction rules, pure: what lines an order's outcome or a period close makes, given what the
worker already knows of the company and the employee (a Book). No I/O; the store loads a Book,
asks one of the functions here, and writes the Changes it gets back.

Rules (issue 10):
- A one-off charge deducts once, in the period the order completed in (Oslo time).
- A monthly charge (a monthly add-on, or a plan's monthly difference) is a service: one line for
  every period it is active in, from the period it completed in, made when the period is closed.
- Ending a service (an order with action delete and `ends_order_id`) stops it from the period
  after the one the ending completed in; a new plan ends the employee's previous plan's difference
  from the period the new plan starts in.
- A failed order is never charged: lines already recorded for it are reversed.
- A period is frozen once it, or a later period, is closed: what arrives for a frozen period
  lands in the first open period after the last closed one, and its line says so.
- Lines are never edited; a correction is a reversal line (the negated amount).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from zoneinfo import ZoneInfo

from mport_shared.events import (
    Billing,
    DeductionLine,
    DeductionLineKind,
    OrderCompleted,
    OrderFailed,
    OrderKind,
    OrderSnapshot,
)

OSLO = ZoneInfo("Europe/Oslo")
# The namespace of every line id: uuid5 of (order, kind, period) under it is the line's stable id.
LINE_NAMESPACE = uuid.UUID("6b1f1d4e-5d0a-4c36-9a53-2f1e0c6a9b10")


def period_of(at: datetime) -> str:
    """The pay period (a calendar month in Oslo) a moment falls in: "YYYY-MM"."""
    return at.astimezone(OSLO).strftime("%Y-%m")


def next_period(period: str) -> str:
    year, month = int(period[:4]), int(period[5:7])
    return f"{year + month // 12:04d}-{month % 12 + 1:02d}"


def periods_between(first: str, last: str) -> list[str]:
    """Every period from `first` to `last`, both included (empty when first > last)."""
    found: list[str] = []
    period = first
    while period <= last:
        found.append(period)
        period = next_period(period)
    return found


def line_id(order_id: uuid.UUID, kind: DeductionLineKind, period: str) -> uuid.UUID:
    """The stable id of an order's line of one kind in one period."""
    return uuid.uuid5(LINE_NAMESPACE, f"{order_id}:{kind.value}:{period}")


def reversal_id(reversed_line_id: uuid.UUID) -> uuid.UUID:
    """The stable id of the reversal of a line (a line is reversed at most once)."""
    return uuid.uuid5(LINE_NAMESPACE, f"{reversed_line_id}:reversal")


def oslo_date(at: datetime) -> str:
    return at.astimezone(OSLO).strftime("%d.%m.%Y")


def month_label(period: str) -> str:
    return f"{period[5:7]}.{period[:4]}"


@dataclass(frozen=True, slots=True)
class RecordedLine:
    """A line as the worker keeps it: the payroll system's line, and why it is where it is."""

    line: DeductionLine
    reverses_line_id: uuid.UUID | None = None
    # The period the charge belonged to when that period was already closed ("moved" forward).
    moved_from: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Service:
    """An active monthly charge: a monthly add-on or a plan's difference, from `start` (a period)
    until before `end` (None: still running)."""

    order_id: uuid.UUID
    company_id: uuid.UUID
    employee_id: uuid.UUID
    employee_number: str
    product_code: str
    product_name: str
    wage_type: str
    monthly_amount_ore: int
    consent_id: uuid.UUID | None
    is_plan: bool
    completed_at: datetime
    start: str
    end: str | None = None

    def active_in(self, period: str) -> bool:
        return self.start <= period and (self.end is None or period < self.end)


@dataclass(frozen=True, slots=True)
class Book:
    """What the worker knows that a decision needs: the company's last closed period, and the
    employee's (or, for a close, the company's) services, lines, failed orders and endings."""

    last_closed: str | None = None
    services: Mapping[uuid.UUID, Service] = field(default_factory=dict)
    lines: tuple[RecordedLine, ...] = ()
    failed: frozenset[uuid.UUID] = frozenset()
    # Ended service's order id → the first period it is no longer charged in.
    endings: Mapping[uuid.UUID, str] = field(default_factory=dict)

    def open_period_for(self, period: str) -> str:
        """Where something that belongs to `period` is recorded: there, or after the last close."""
        if self.last_closed is not None and period <= self.last_closed:
            return next_period(self.last_closed)
        return period

    def reversed_ids(self) -> set[uuid.UUID]:
        return {r.reverses_line_id for r in self.lines if r.reverses_line_id is not None}


@dataclass(frozen=True, slots=True)
class Ending:
    order_id: uuid.UUID  # the service's order
    from_period: str
    ending_order_id: uuid.UUID
    employee_id: uuid.UUID


@dataclass(slots=True)
class Changes:
    """What to write: new lines (never edits), services to upsert, marks, and a period to close."""

    lines: list[RecordedLine] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)
    failed: uuid.UUID | None = None
    failed_employee_id: uuid.UUID | None = None
    ending: Ending | None = None
    closed: str | None = None
    note: str | None = None  # why nothing was done, for the log


def on_completed(event: OrderCompleted, book: Book, *, default_wage_type: str) -> Changes:
    order = event.order
    changes = Changes()
    if order.order_id in book.failed:
        changes.note = "the order has failed before: nothing is charged"
        return changes
    if order.action == "delete":
        return _end_service(order, book, at=event.completed_at)
    charge = order.employee_charge
    period = period_of(event.completed_at)
    landing = book.open_period_for(period)
    moved_from = period if landing != period else None
    wage_type = order.wage_type or default_wage_type
    consent_id = order.consent.consent_id if order.consent else None
    if order.kind is OrderKind.PLAN:
        # The new plan's difference replaces the previous plan's from `landing`. A plan the
        # employee pays nothing for is kept too (with no lines): it still ends the one before it,
        # even when that one's completion arrives after it.
        new = _service(order, event, wage_type=wage_type, start=landing)
        return _supersede_plans(order, book, new=new, at=event.completed_at, start=landing)
    if charge.amount_ore == 0:
        changes.note = "the employee pays nothing for this order"
        return changes
    if charge.billing is Billing.ONE_OFF:
        text = f"{order.product_name or order.product_code} {oslo_date(event.completed_at)}"
        if moved_from:
            text += f" (overført fra {month_label(moved_from)})"
        line = DeductionLine(
            line_id=line_id(order.order_id, DeductionLineKind.ONE_OFF, landing),
            company_id=order.company_id,
            employee_id=order.employee_id,
            employee_number=order.employee_number,
            order_id=order.order_id,
            product_code=order.product_code,
            kind=DeductionLineKind.ONE_OFF,
            wage_type=wage_type,
            amount_ore=charge.amount_ore,
            period=landing,
            consent_id=consent_id,
            text=text,
        )
        if any(
            r.line.order_id == order.order_id and r.line.kind is DeductionLineKind.ONE_OFF for r in book.lines
        ):
            changes.note = "the order's one-off line is already recorded"
            return changes
        changes.lines.append(RecordedLine(line=line, moved_from=moved_from))
        return changes
    if order.order_id in book.services:
        changes.note = "the service is already recorded"
        return changes
    service = _service(order, event, wage_type=wage_type, start=landing)
    if order.order_id in book.endings:
        # Its ending was handled before its own completion (events out of order).
        service = replace(service, end=book.endings[order.order_id])
    changes.services.append(service)
    return changes


def _service(order: OrderSnapshot, event: OrderCompleted, *, wage_type: str, start: str) -> Service:
    return Service(
        order_id=order.order_id,
        company_id=order.company_id,
        employee_id=order.employee_id,
        employee_number=order.employee_number,
        product_code=order.product_code,
        product_name=order.product_name or order.product_code,
        wage_type=wage_type,
        monthly_amount_ore=order.employee_charge.amount_ore,
        consent_id=order.consent.consent_id if order.consent else None,
        is_plan=order.kind is OrderKind.PLAN,
        completed_at=event.completed_at,
        start=start,
    )


def _supersede_plans(order: OrderSnapshot, book: Book, *, new: Service, at: datetime, start: str) -> Changes:
    """The plan that completed later wins: earlier plans end where it starts; if a later plan is
    already known (events out of order), this one ends where that one starts."""
    changes = Changes()
    if order.order_id in book.services:
        changes.note = "the plan is already recorded"
        return changes
    for other in book.services.values():
        if (
            not other.is_plan
            or other.employee_id != order.employee_id
            or other.order_id == order.order_id
            or other.order_id in book.failed
        ):
            continue
        if (other.completed_at, str(other.order_id)) < (at, str(order.order_id)):
            if other.end is None or other.end > start:
                ended = replace(other, end=max(start, other.start))
                changes.services.append(ended)
                changes.lines.extend(
                    _reverse_from(book, ended, reason="replaced by a new plan", landing=start)
                )
        else:
            new = replace(new, end=min(new.end or other.start, other.start))
    changes.services.append(new)
    return changes


def _end_service(order: OrderSnapshot, book: Book, *, at: datetime) -> Changes:
    changes = Changes()
    if order.ends_order_id is None:
        changes.note = "a delete that names no service to end"
        return changes
    from_period = next_period(period_of(at))
    changes.ending = Ending(
        order_id=order.ends_order_id,
        from_period=from_period,
        ending_order_id=order.order_id,
        employee_id=order.employee_id,
    )
    service = book.services.get(order.ends_order_id)
    if service is not None and service.employee_id != order.employee_id:
        changes.ending = None
        changes.note = "the service is another employee's: nothing ended"
        return changes
    if service is None:
        changes.note = "the service's own completion has not arrived yet; it will start ended"
        return changes
    if service.end is not None and service.end <= from_period:
        return changes
    ended = replace(service, end=max(from_period, service.start))
    changes.services.append(ended)
    changes.lines.extend(
        _reverse_from(
            book, ended, reason="the service was ended", landing=book.open_period_for(period_of(at))
        )
    )
    return changes


def _reverse_from(book: Book, service: Service, *, reason: str, landing: str) -> list[RecordedLine]:
    """Reversals of the service's monthly lines for periods it is no longer active in."""
    done = book.reversed_ids()
    return [
        _reversal(r, reason=reason, landing=landing)
        for r in book.lines
        if r.line.order_id == service.order_id
        and r.line.kind is DeductionLineKind.MONTHLY
        and not service.active_in(r.line.period)
        and r.line.line_id not in done
    ]


def _reversal(original: RecordedLine, *, reason: str, landing: str) -> RecordedLine:
    line = original.line
    return RecordedLine(
        line=line.model_copy(
            update={
                "line_id": reversal_id(line.line_id),
                "kind": DeductionLineKind.REVERSAL,
                "amount_ore": -line.amount_ore,
                "period": landing,
                "text": f"Tilbakeført: {line.text}",
            }
        ),
        reverses_line_id=line.line_id,
        reason=reason,
    )


def on_failed(event: OrderFailed, book: Book) -> Changes:
    """A failed order is never charged: mark it, end its service, reverse what it was charged."""
    order = event.order
    changes = Changes(failed=order.order_id, failed_employee_id=order.employee_id)
    landing = book.open_period_for(period_of(event.failed_at))
    service = book.services.get(order.order_id)
    if service is not None and service.end != service.start:
        changes.services.append(replace(service, end=service.start))
    done = book.reversed_ids()
    changes.lines.extend(
        _reversal(r, reason=f"the order failed: {event.reason}", landing=landing)
        for r in book.lines
        if r.line.order_id == order.order_id
        and r.line.kind is not DeductionLineKind.REVERSAL
        and r.line.line_id not in done
    )
    return changes


def on_close(period: str, book: Book) -> Changes:
    """Close the company's pay periods up to `period`: every active service gets its monthly line
    for each period not yet frozen, up to and including `period`. Closing a frozen period again
    changes nothing."""
    changes = Changes()
    if book.last_closed is not None and period <= book.last_closed:
        changes.note = "the period is already closed"
        return changes
    changes.closed = period
    have = {r.line.line_id for r in book.lines}
    for service in sorted(book.services.values(), key=lambda s: (s.employee_number, str(s.order_id))):
        if service.order_id in book.failed or service.monthly_amount_ore == 0:
            continue
        first = (
            service.start if book.last_closed is None else max(service.start, next_period(book.last_closed))
        )
        for month in periods_between(first, period):
            if not service.active_in(month):
                continue
            new_id = line_id(service.order_id, DeductionLineKind.MONTHLY, month)
            if new_id in have:
                continue
            changes.lines.append(
                RecordedLine(
                    line=DeductionLine(
                        line_id=new_id,
                        company_id=service.company_id,
                        employee_id=service.employee_id,
                        employee_number=service.employee_number,
                        order_id=service.order_id,
                        product_code=service.product_code,
                        kind=DeductionLineKind.MONTHLY,
                        wage_type=service.wage_type,
                        amount_ore=service.monthly_amount_ore,
                        period=month,
                        consent_id=service.consent_id,
                        text=f"{service.product_name} {month_label(month)}",
                    )
                )
            )
    return changes
