"""The deductions' use cases: record a line the payroll-worker published (idempotently), show an
employee their lines and an administrator their company's, and have the payroll-worker close a
period (with its audit entry) or export one. Each takes a unit of work (and the payroll-worker's
adapter) and raises DomainError with a stable code; none knows HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import TYPE_CHECKING, Protocol

from mport_shared.events import DeductionLine
from mport_shared.logging import get_logger

from portal_api.admin.domain import AuditAction
from portal_api.admin.service import AdminUnitOfWork, administrator
from portal_api.errors import DomainError, ErrorCode, NotSignedIn
from portal_api.models import AuditEntry, Deduction, Employee
from portal_api.payroll.client import (
    ClosedPeriod,
    ExportFile,
    PayrollRefused,
    PayrollUnavailable,
    PeriodStatus,
)
from portal_api.payroll.domain import (
    EmployeeTotal,
    ExportFormat,
    PeriodLines,
    by_employee,
    by_period,
    valid_period,
)

if TYPE_CHECKING:  # unit_of_work imports this package's repositories
    from portal_api.unit_of_work import Messages

log = get_logger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


class Deductions(Protocol):
    """The read model of the deduction lines."""

    async def get(self, line_id: uuid.UUID) -> Deduction | None: ...

    def add(self, line: Deduction) -> None: ...

    async def of_employee(self, employee_id: uuid.UUID) -> Sequence[Deduction]: ...

    async def of_company(self, company_id: uuid.UUID, period: str) -> Sequence[Deduction]: ...

    async def names_in(self, company_id: uuid.UUID, employee_ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
        """The names of those of the employees who are the company's."""
        ...


class PayrollSystem(Protocol):
    """The payroll-worker as the use cases need it (payroll.client.PayrollWorkerClient)."""

    async def periods(self, company_id: uuid.UUID) -> list[PeriodStatus]: ...

    async def close(self, company_id: uuid.UUID, period: str) -> ClosedPeriod: ...

    async def export(self, company_id: uuid.UUID, period: str, export_format: ExportFormat) -> ExportFile: ...


class PayrollUnitOfWork(AdminUnitOfWork, Protocol):
    """What the deductions' use cases need of a unit of work: the administrator's, and the read
    model and the inbox."""

    @property
    def deductions(self) -> Deductions: ...
    @property
    def messages(self) -> Messages: ...


class RecordOutcome(Enum):
    RECORDED = "recorded"
    DUPLICATE = "duplicate"  # the message, or another carrying the same line, was handled before


async def record_deduction(
    uow: PayrollUnitOfWork,
    *,
    message_id: str,
    line: DeductionLine,
    recorded_at: datetime,
    reverses_line_id: uuid.UUID | None = None,
    reason: str | None = None,
) -> RecordOutcome:
    """Add the line to the read model once: the inbox skips a redelivered message, the line id
    (the table's primary key) a second message about the same line."""
    async with uow:
        if not await uow.messages.claim(message_id):
            return RecordOutcome.DUPLICATE
        if await uow.deductions.get(line.line_id) is not None:
            await uow.commit()  # the claim: this message is handled too
            return RecordOutcome.DUPLICATE
        uow.deductions.add(
            Deduction(
                line_id=line.line_id,
                company_id=line.company_id,
                employee_id=line.employee_id,
                employee_number=line.employee_number,
                order_id=line.order_id,
                product_code=line.product_code,
                kind=line.kind.value,
                wage_type=line.wage_type,
                amount_ore=line.amount_ore,
                quantity=line.quantity,
                period=line.period,
                consent_id=line.consent_id,
                text=line.text,
                recorded_at=recorded_at,
                reverses_line_id=reverses_line_id,
                reversal_reason=reason,
            )
        )
        await uow.commit()
    return RecordOutcome.RECORDED


async def deductions_of(uow: PayrollUnitOfWork, employee_id: uuid.UUID) -> list[PeriodLines]:
    """The signed-in employee's own lines by period, newest period first, with sums."""
    if await uow.employees.get(employee_id) is None:
        raise NotSignedIn()
    return by_period(await uow.deductions.of_employee(employee_id))


def check_period(period: str) -> str:
    if not valid_period(period):
        raise DomainError(
            ErrorCode.INVALID_PERIOD, f"{period[:20]!r} is not a pay period: write it YYYY-MM, e.g. 2026-12."
        )
    return period


@dataclass(frozen=True, slots=True, kw_only=True)
class CompanyPeriod:
    period: str
    employees: list[EmployeeTotal]

    @property
    def total_ore(self) -> int:
        return sum(e.total_ore for e in self.employees)


async def company_deductions(
    uow: PayrollUnitOfWork, actor_id: uuid.UUID, period: str
) -> tuple[Employee, CompanyPeriod]:
    """The administrator and their company's lines in the period, per employee with totals."""
    actor = await administrator(uow, actor_id)
    check_period(period)
    lines = await uow.deductions.of_company(actor.company_id, period)
    names = await uow.deductions.names_in(actor.company_id, {d.employee_id for d in lines})
    return actor, CompanyPeriod(period=period, employees=by_employee(lines, names))


def _unavailable(error: PayrollUnavailable) -> DomainError:
    log.warning("payroll-worker unavailable", reason=str(error))
    return DomainError(
        ErrorCode.PAYROLL_UNAVAILABLE,
        "The payroll system (payroll-worker) does not answer just now; nothing was changed. Try again "
        "in a while.",
    )


def _refused(error: PayrollRefused) -> DomainError:
    if error.status == 400:
        return DomainError(ErrorCode.INVALID_PERIOD, error.detail or "The payroll-worker refused the period.")
    return DomainError(ErrorCode.PAYROLL_REFUSED, f"The payroll-worker refused: {error.detail}")


async def payroll_periods(
    uow: PayrollUnitOfWork, payroll: PayrollSystem, actor_id: uuid.UUID
) -> tuple[Employee, list[PeriodStatus]]:
    """The administrator's company's pay periods as the payroll-worker has them."""
    actor = await administrator(uow, actor_id)
    await uow.end_reads()
    try:
        return actor, await payroll.periods(actor.company_id)
    except PayrollUnavailable as error:
        raise _unavailable(error) from error
    except PayrollRefused as error:
        raise _refused(error) from error


async def close_period(
    uow: PayrollUnitOfWork,
    payroll: PayrollSystem,
    *,
    actor_id: uuid.UUID,
    period: str,
    clock: Callable[[], datetime] = utc_now,
) -> ClosedPeriod:
    """Have the payroll-worker close the administrator's company's period (generating its
    recurring lines; idempotent there), and log the close in the audit log. The log entry is
    written once the payroll-worker has answered: a close it refused or never got logs nothing."""
    actor = await administrator(uow, actor_id)
    check_period(period)
    await uow.end_reads()
    try:
        closed = await payroll.close(actor.company_id, period)
    except PayrollUnavailable as error:
        raise _unavailable(error) from error
    except PayrollRefused as error:
        raise _refused(error) from error
    async with uow:
        uow.audit_log.add(
            AuditEntry(
                company_id=actor.company_id,
                actor_employee_id=actor.id,
                subject_employee_id=actor.id,
                action=AuditAction.PAYROLL_PERIOD_CLOSED.value,
                before={},
                after={
                    "period": period,
                    "status": closed.status,
                    "recurring_lines_generated": closed.recurring_lines_generated,
                },
                at=clock(),
            )
        )
        await uow.commit()
    log.info(
        "pay period closed by administrator",
        actor_employee_id=str(actor.id),
        company_id=str(actor.company_id),
        period=period,
        recurring_lines_generated=closed.recurring_lines_generated,
    )
    return closed


async def export_period(
    uow: PayrollUnitOfWork,
    payroll: PayrollSystem,
    *,
    actor_id: uuid.UUID,
    period: str,
    export_format: ExportFormat,
) -> ExportFile:
    """The payroll-worker's file of the administrator's company's period."""
    actor = await administrator(uow, actor_id)
    check_period(period)
    await uow.end_reads()
    try:
        return await payroll.export(actor.company_id, period, export_format)
    except PayrollUnavailable as error:
        raise _unavailable(error) from error
    except PayrollRefused as error:
        raise _refused(error) from error
