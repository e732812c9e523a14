"""The payroll-worker's use cases: an order completed or failed (from the broker), a period closed,
periods listed and a period exported (from the CLI and the internal HTTP API). Each runs in one
transaction; an event's effects are written with its inbox row, so a redelivery adds nothing."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from mport_shared.events import Envelope, EventPayload, OrderCompleted, OrderFailed
from mport_shared.logging import get_logger
from mport_shared.messaging.consumer import PermanentFailure
from mport_shared.messaging.inbox import claim_message
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from payroll_worker import domain, exports, store
from payroll_worker.domain import Changes
from payroll_worker.models import tables

CONSUMER = "payroll-worker"
log = get_logger(__name__)


class BadPeriod(ValueError):
    """Not a period (YYYY-MM)."""


class PeriodNotStarted(ValueError):
    """A close of a period that has not begun: it would freeze every period before it for good."""


def parse_period(value: str) -> str:
    if (
        len(value) != 7
        or value[4] != "-"
        or not (value[:4] + value[5:]).isdigit()
        or not 1 <= int(value[5:]) <= 12
    ):
        raise BadPeriod(f"{value!r} is not a pay period (YYYY-MM, e.g. 2026-12)")
    return value


@dataclass(frozen=True, slots=True)
class CloseResult:
    period: str
    closed_at: datetime
    recurring_lines_generated: int


@dataclass
class Payroll:
    sessions: async_sessionmaker[AsyncSession]
    default_wage_type: str
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    async def on_order_completed(self, envelope: Envelope[EventPayload]) -> None:
        event = envelope.data
        if not isinstance(event, OrderCompleted):
            raise PermanentFailure(f"expected OrderCompleted, got {envelope.type}")
        order = event.order
        if order.employee_charge.amount_ore and order.consent is None:
            # Recorded all the same (the order is done); the line's consent_id is empty.
            log.warning("a charge without the employee's consent", order_id=str(order.order_id))
        async with self.sessions.begin() as session:
            if not await self._claim(session, envelope):
                return
            last_closed = await store.lock_company(session, order.company_id)
            book = await store.employee_book(
                session,
                company_id=order.company_id,
                employee_id=order.employee_id,
                orders={o for o in (order.order_id, order.ends_order_id) if o is not None},
                last_closed=last_closed,
            )
            changes = domain.on_completed(event, book, default_wage_type=self.default_wage_type)
            await store.write(
                session, changes, company_id=order.company_id, correlation_id=str(order.order_id)
            )
        self._log(changes, order_id=order.order_id, what="order completed")

    async def on_order_failed(self, envelope: Envelope[EventPayload]) -> None:
        event = envelope.data
        if not isinstance(event, OrderFailed):
            raise PermanentFailure(f"expected OrderFailed, got {envelope.type}")
        order = event.order
        async with self.sessions.begin() as session:
            if not await self._claim(session, envelope):
                return
            last_closed = await store.lock_company(session, order.company_id)
            book = await store.employee_book(
                session,
                company_id=order.company_id,
                employee_id=order.employee_id,
                orders={o for o in (order.order_id, order.ends_order_id) if o is not None},
                last_closed=last_closed,
            )
            changes = domain.on_failed(event, book)
            await store.write(
                session, changes, company_id=order.company_id, correlation_id=str(order.order_id)
            )
        self._log(changes, order_id=order.order_id, what="order failed")

    async def close(self, company_id: uuid.UUID, period: str) -> CloseResult:
        """Close the company's periods up to `period` (idempotent: closing again generates nothing)."""
        period = parse_period(period)
        now = self.clock()
        # This month and the next may be closed (a pay run is often made before the month ends);
        # a later one is a typo that would freeze every period up to it.
        if period > domain.next_period(domain.period_of(now)):
            raise PeriodNotStarted(f"{period} has not begun; the latest period that can be closed now is "
                                   f"{domain.next_period(domain.period_of(now))}")  # fmt: skip
        async with self.sessions.begin() as session:
            last_closed = await store.lock_company(session, company_id)
            book = await store.company_book_for_close(session, company_id=company_id, last_closed=last_closed)
            changes = domain.on_close(period, book)
            if changes.closed is None:
                already = await store.closed_period(session, company_id, period)
                closed_at = already.closed_at if already and already.closed_at else now
                return CloseResult(period=period, closed_at=closed_at, recurring_lines_generated=0)
            await store.write(
                session, changes, company_id=company_id, correlation_id=f"{company_id}:{period}", now=now
            )
            await store.record_close(
                session,
                company_id=company_id,
                period=period,
                last_closed=last_closed,
                generated=len(changes.lines),
                now=now,
            )
        log.info("pay period closed", company_id=str(company_id), period=period, lines=len(changes.lines))
        return CloseResult(period=period, closed_at=now, recurring_lines_generated=len(changes.lines))

    async def periods(self, company_id: uuid.UUID) -> list[store.PeriodSummary]:
        async with self.sessions() as session:
            return await store.period_summaries(
                session, company_id, current=domain.period_of(datetime.now(UTC))
            )

    async def export(self, company_id: uuid.UUID, period: str, fmt: str) -> exports.ExportFile:
        period = parse_period(period)
        async with self.sessions() as session:
            lines = await store.lines_of(session, company_id, period)
        return exports.export(fmt, company_id=company_id, period=period, lines=lines)

    async def _claim(self, session: AsyncSession, envelope: Envelope[EventPayload]) -> bool:
        if await claim_message(session, tables.inbox, consumer=CONSUMER, message_id=envelope.id):
            return True
        log.info("message handled before; nothing to do", message_id=envelope.id)
        return False

    @staticmethod
    def _log(changes: Changes, *, order_id: uuid.UUID, what: str) -> None:
        for recorded in changes.lines:
            line = recorded.line
            log.info(
                "deduction line recorded" if recorded.reverses_line_id is None else "deduction line reversed",
                order_id=str(order_id),
                line_id=str(line.line_id),
                kind=line.kind.value,
                period=line.period,
                amount_ore=line.amount_ore,
                reverses_line_id=str(recorded.reverses_line_id) if recorded.reverses_line_id else None,
            )
            if recorded.moved_from:
                log.info(
                    "the order's period was closed: the line lands in the next open period",
                    order_id=str(order_id),
                    closed_period=recorded.moved_from,
                    period=line.period,
                )
        if not changes.lines:
            log.info(f"{what}: no deduction line", order_id=str(order_id), why=changes.note)
