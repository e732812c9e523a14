"""Where deductions are kept: each use case runs in one transaction that locks the company's row
first (so a period close and an event for that period never interleave), loads a Book, asks the
domain, and writes the Changes with their events in the outbox and the message in the inbox."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mport_shared.db import insert_if_absent
from mport_shared.events import (
    DeductionLine,
    DeductionLineKind,
    Envelope,
    EventPayload,
    PayrollDeductionRecorded,
    PayrollDeductionReversed,
    envelop,
)
from mport_shared.messaging.outbox import add_all_to_outbox
from mport_shared.tracing import continued
from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from payroll_worker.domain import Book, Changes, RecordedLine, Service, next_period
from payroll_worker.models import (
    DeductionLineRow,
    FailedOrder,
    PayPeriod,
    PayrollCompany,
    ServiceEnding,
    ServiceRow,
    tables,
)

SOURCE = "/mport/payroll-worker"

_COMPANIES: Table = PayrollCompany.__table__  # type: ignore[assignment]
_PERIODS: Table = PayPeriod.__table__  # type: ignore[assignment]
_LINES: Table = DeductionLineRow.__table__  # type: ignore[assignment]
_SERVICES: Table = ServiceRow.__table__  # type: ignore[assignment]
_FAILED: Table = FailedOrder.__table__  # type: ignore[assignment]
_ENDINGS: Table = ServiceEnding.__table__  # type: ignore[assignment]


async def lock_company(session: AsyncSession, company_id: uuid.UUID) -> str | None:
    """Lock the company's row (made on first use) and return its last closed period.

    The UPDATE that changes nothing is the lock: a row lock on PostgreSQL, and on SQLite the
    database's write lock, taken before anything is read (the driver begins at the first write)."""
    key = str(company_id)
    await insert_if_absent(session, _COMPANIES, {"company_id": key, "last_closed": None}, keys=["company_id"])
    result = await session.execute(
        update(_COMPANIES)
        .where(_COMPANIES.c.company_id == key)
        .values(company_id=_COMPANIES.c.company_id)
        .returning(_COMPANIES.c.last_closed)
    )
    last_closed: str | None = result.scalar_one()
    return last_closed


@dataclass(frozen=True, slots=True)
class BookWanted:
    """One decision's reading: an employee of a company, and the orders the event is about (the
    order and the one it ends)."""

    company_id: uuid.UUID
    employee_id: uuid.UUID
    orders: frozenset[uuid.UUID]


async def employee_books(
    session: AsyncSession, wanted: Sequence[BookWanted], last_closed: Mapping[uuid.UUID, str | None]
) -> list[Book]:
    """What each decision needs, for several employees with four queries in all: their services
    (few: monthly charges only), and the lines, failures and endings of the event's orders and of
    those services. Not all their lines: one-off lines pile up (Ekstra Data, again and again), and
    every event would read them all."""
    companies = sorted({str(w.company_id) for w in wanted})
    employees = sorted({str(w.employee_id) for w in wanted})
    services: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for row in await session.execute(
        select(_SERVICES).where(_SERVICES.c.company_id.in_(companies), _SERVICES.c.employee_id.in_(employees))
    ):
        services[row.company_id, row.employee_id].append(row)
    ids = [
        {str(o) for o in w.orders} | {row.order_id for row in services[str(w.company_id), str(w.employee_id)]}
        for w in wanted
    ]
    every_id = sorted(set().union(*ids))

    def of_these(table: Table) -> Any:
        return (
            table.c.company_id.in_(companies),
            table.c.employee_id.in_(employees),
            table.c.order_id.in_(every_id),
        )

    lines = (await session.execute(select(_LINES).where(*of_these(_LINES)))).all()
    failed = (
        await session.execute(
            select(_FAILED.c.company_id, _FAILED.c.employee_id, _FAILED.c.order_id).where(*of_these(_FAILED))
        )
    ).all()
    endings = (
        await session.execute(
            select(
                _ENDINGS.c.company_id, _ENDINGS.c.employee_id, _ENDINGS.c.order_id, _ENDINGS.c.from_period
            ).where(*of_these(_ENDINGS))
        )
    ).all()
    books = []
    for w, these in zip(wanted, ids, strict=True):
        key = (str(w.company_id), str(w.employee_id))

        def mine(row: Any, key: tuple[str, str] = key, these: set[str] = these) -> bool:
            return (row.company_id, row.employee_id) == key and row.order_id in these

        books.append(
            Book(
                last_closed=last_closed[w.company_id],
                services={uuid.UUID(row.order_id): _service(row) for row in services[key]},
                lines=tuple(_recorded(row) for row in lines if mine(row)),
                failed=frozenset(uuid.UUID(row.order_id) for row in failed if mine(row)),
                endings={uuid.UUID(row.order_id): row.from_period for row in endings if mine(row)},
            )
        )
    return books


async def company_book_for_close(
    session: AsyncSession, *, company_id: uuid.UUID, last_closed: str | None
) -> Book:
    """What a close needs: the company's services, and its monthly lines in the periods it freezes."""
    company = str(company_id)
    services = (await session.execute(select(_SERVICES).where(_SERVICES.c.company_id == company))).all()
    query = select(_LINES).where(
        _LINES.c.company_id == company, _LINES.c.kind == DeductionLineKind.MONTHLY.value
    )
    if last_closed is not None:
        query = query.where(_LINES.c.period > last_closed)
    lines = (await session.execute(query)).all()
    failed = await session.scalars(select(_FAILED.c.order_id).where(_FAILED.c.company_id == company))
    return Book(
        last_closed=last_closed,
        services={uuid.UUID(row.order_id): _service(row) for row in services},
        lines=tuple(_recorded(row) for row in lines),
        failed=frozenset(uuid.UUID(v) for v in failed),
    )


@dataclass(frozen=True, slots=True)
class Write:
    """One decision's changes, with the company they belong to and the correlation id of their events."""

    changes: Changes
    company_id: uuid.UUID
    correlation_id: str
    traceparent: str | None = None  # the trace its events join


async def write(session: AsyncSession, writes: Sequence[Write], *, now: datetime | None = None) -> None:
    """Write the changes, and each new line's event into the outbox, in the caller's transaction:
    the lines of every decision with one statement, their events with another."""
    now = now or datetime.now(UTC)
    new_lines = [(w, r) for w in writes for r in w.changes.lines]
    if new_lines:
        await session.execute(insert(_LINES), [_line_values(r, now) for _, r in new_lines])
        await add_all_to_outbox(
            session,
            tables.outbox,
            [_envelope(w, r, now) for w, r in new_lines],
        )
    for w in writes:
        await _write_marks(session, w.changes, company_id=w.company_id, now=now)


def _envelope(w: Write, r: RecordedLine, now: datetime) -> Envelope[EventPayload]:
    with continued(w.traceparent):
        return envelop(
            _event_of(r, now), source=SOURCE, correlation_id=w.correlation_id, subject=str(r.line.line_id)
        )


async def _write_marks(
    session: AsyncSession, changes: Changes, *, company_id: uuid.UUID, now: datetime
) -> None:
    """The services, failure and ending a decision changes (few: most decisions change none)."""
    for service in changes.services:
        await session.execute(delete(_SERVICES).where(_SERVICES.c.order_id == str(service.order_id)))
        await session.execute(insert(_SERVICES).values(**_service_values(service)))
    if changes.failed is not None:
        await insert_if_absent(
            session,
            _FAILED,
            {
                "order_id": str(changes.failed),
                "company_id": str(company_id),
                "employee_id": str(changes.failed_employee_id),
                "failed_at": now,
            },
            keys=["order_id"],
        )
    if changes.ending is not None:
        ending = changes.ending
        await insert_if_absent(
            session,
            _ENDINGS,
            {
                "order_id": str(ending.order_id),
                "company_id": str(company_id),
                "employee_id": str(ending.employee_id),
                "from_period": ending.from_period,
                "ending_order_id": str(ending.ending_order_id),
            },
            keys=["order_id"],
        )
        # Two endings of one service: the earlier one holds.
        await session.execute(
            update(_ENDINGS)
            .where(_ENDINGS.c.order_id == str(ending.order_id), _ENDINGS.c.from_period > ending.from_period)
            .values(from_period=ending.from_period, ending_order_id=str(ending.ending_order_id))
        )


async def record_close(
    session: AsyncSession,
    *,
    company_id: uuid.UUID,
    period: str,
    last_closed: str | None,
    generated: int,
    now: datetime,
) -> None:
    """Freeze the company's periods up to `period`: a row for it and for each earlier one it
    freezes that has lines."""
    company = str(company_id)
    query = select(_LINES.c.period).distinct().where(_LINES.c.company_id == company, _LINES.c.period < period)
    if last_closed is not None:
        query = query.where(_LINES.c.period > last_closed)
    frozen = set(await session.scalars(query))
    rows = [
        {"company_id": company, "period": p, "closed_at": now, "recurring_lines_generated": 0}
        for p in sorted(frozen)
    ]
    rows.append(
        {"company_id": company, "period": period, "closed_at": now, "recurring_lines_generated": generated}
    )
    await session.execute(insert(_PERIODS), rows)
    await session.execute(
        update(_COMPANIES).where(_COMPANIES.c.company_id == company).values(last_closed=period)
    )


@dataclass(frozen=True, slots=True)
class PeriodSummary:
    period: str
    status: str  # open | closed
    closed_at: datetime | None
    lines: int
    total_ore: int


async def period_summaries(
    session: AsyncSession, company_id: uuid.UUID, *, current: str
) -> list[PeriodSummary]:
    company = str(company_id)
    last_closed = await session.scalar(
        select(_COMPANIES.c.last_closed).where(_COMPANIES.c.company_id == company)
    )
    closed = {
        row.period: row.closed_at
        for row in await session.execute(
            select(_PERIODS.c.period, _PERIODS.c.closed_at).where(_PERIODS.c.company_id == company)
        )
    }
    counts: dict[str, tuple[int, int]] = {
        row.period: (row.lines, int(row.total))
        for row in await session.execute(
            select(_LINES.c.period, func.count().label("lines"), func.sum(_LINES.c.amount_ore).label("total"))
            .where(_LINES.c.company_id == company)
            .group_by(_LINES.c.period)
        )
    }
    periods = set(closed) | set(counts) | {current}
    if last_closed is not None:
        periods.add(next_period(last_closed))
    return [
        PeriodSummary(
            period=p,
            status="closed" if last_closed is not None and p <= last_closed else "open",
            closed_at=closed.get(p),
            lines=counts.get(p, (0, 0))[0],
            total_ore=counts.get(p, (0, 0))[1],
        )
        for p in sorted(periods)
    ]


async def closed_period(session: AsyncSession, company_id: uuid.UUID, period: str) -> PeriodSummary | None:
    row = (
        await session.execute(
            select(_PERIODS)
            .where(_PERIODS.c.company_id == str(company_id), _PERIODS.c.period >= period)
            .order_by(_PERIODS.c.period)
            .limit(1)
        )
    ).first()
    if row is None:
        return None
    return PeriodSummary(period=period, status="closed", closed_at=row.closed_at, lines=0, total_ore=0)


async def lines_of(session: AsyncSession, company_id: uuid.UUID, period: str) -> list[DeductionLine]:
    rows = (
        await session.execute(
            select(_LINES).where(_LINES.c.company_id == str(company_id), _LINES.c.period == period)
        )
    ).all()
    return [_recorded(row).line for row in rows]


def _event_of(recorded: RecordedLine, now: datetime) -> EventPayload:
    if recorded.reverses_line_id is not None:
        return PayrollDeductionReversed(
            line=recorded.line,
            reverses_line_id=recorded.reverses_line_id,
            reason=recorded.reason or "",
            reversed_at=now,
        )
    return PayrollDeductionRecorded(line=recorded.line, recorded_at=now)


def _line_values(recorded: RecordedLine, now: datetime) -> dict[str, object]:
    line = recorded.line
    return {
        "line_id": str(line.line_id),
        "company_id": str(line.company_id),
        "employee_id": str(line.employee_id),
        "employee_number": line.employee_number,
        "order_id": str(line.order_id),
        "product_code": line.product_code,
        "kind": line.kind.value,
        "wage_type": line.wage_type,
        "amount_ore": line.amount_ore,
        "quantity": line.quantity,
        "period": line.period,
        "consent_id": str(line.consent_id) if line.consent_id else None,
        "text": line.text,
        "reverses_line_id": str(recorded.reverses_line_id) if recorded.reverses_line_id else None,
        "reason": recorded.reason,
        "moved_from_period": recorded.moved_from,
        "recorded_at": now,
    }


def _recorded(r: Any) -> RecordedLine:
    """A row of deduction_lines as the domain's line."""
    return RecordedLine(
        line=DeductionLine(
            line_id=uuid.UUID(r.line_id),
            company_id=uuid.UUID(r.company_id),
            employee_id=uuid.UUID(r.employee_id),
            employee_number=r.employee_number,
            order_id=uuid.UUID(r.order_id),
            product_code=r.product_code,
            kind=DeductionLineKind(r.kind),
            wage_type=r.wage_type,
            amount_ore=r.amount_ore,
            quantity=r.quantity,
            period=r.period,
            consent_id=uuid.UUID(r.consent_id) if r.consent_id else None,
            text=r.text,
        ),
        reverses_line_id=uuid.UUID(r.reverses_line_id) if r.reverses_line_id else None,
        moved_from=r.moved_from_period,
        reason=r.reason,
    )


def _service(r: Any) -> Service:
    return Service(
        order_id=uuid.UUID(r.order_id),
        company_id=uuid.UUID(r.company_id),
        employee_id=uuid.UUID(r.employee_id),
        employee_number=r.employee_number,
        product_code=r.product_code,
        product_name=r.product_name,
        wage_type=r.wage_type,
        monthly_amount_ore=r.monthly_amount_ore,
        consent_id=uuid.UUID(r.consent_id) if r.consent_id else None,
        is_plan=r.is_plan,
        completed_at=r.completed_at,
        start=r.start_period,
        end=r.end_period,
    )


def _service_values(s: Service) -> dict[str, object]:
    return {
        "order_id": str(s.order_id),
        "company_id": str(s.company_id),
        "employee_id": str(s.employee_id),
        "employee_number": s.employee_number,
        "product_code": s.product_code,
        "product_name": s.product_name,
        "wage_type": s.wage_type,
        "monthly_amount_ore": s.monthly_amount_ore,
        "consent_id": str(s.consent_id) if s.consent_id else None,
        "is_plan": s.is_plan,
        "completed_at": s.completed_at,
        "start_period": s.start,
        "end_period": s.end,
    }
