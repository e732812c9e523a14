"""The deductions' API: the employee's own lines (`GET /api/v1/deductions`) and the administrator's
Lønnstrekk (`/api/v1/admin/payroll/…`: the company's lines per period and employee from the read
model; the periods, their close and the exports through the payroll-worker). Thin: HTTP in, a use
case of payroll.service, JSON (or the export file) out."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from portal_api.deps import SignedInEmployee, Uow, require_csrf
from portal_api.errors import ErrorCode
from portal_api.models import Deduction
from portal_api.payroll.client import ClosedPeriod, PeriodStatus
from portal_api.payroll.domain import EmployeeTotal, ExportFormat, PeriodLines, period_of
from portal_api.payroll.service import (
    PayrollSystem,
    close_period,
    company_deductions,
    deductions_of,
    export_period,
    payroll_periods,
)
from portal_api.problems import CSRF_FAILED, INVALID_REQUEST, problem_responses

router = APIRouter(prefix="/api/v1", dependencies=[Depends(require_csrf)])

ORDERS_API = "/api/v1/orders"


def payroll_system(request: Request) -> PayrollSystem:
    payroll: PayrollSystem = request.app.state.payroll
    return payroll


Payroll = Annotated[PayrollSystem, Depends(payroll_system)]
PeriodParam = Annotated[
    str, Path(max_length=20, description="the pay period, YYYY-MM (a calendar month in Oslo time)")
]


class DeductionLineOut(BaseModel):
    id: uuid.UUID = Field(description="The line's stable id (the payroll system's deduplication key)")
    order_id: uuid.UUID
    order_url: str = Field(description="The order the line is for, in this API")
    product_code: str
    kind: str = Field(description="one_off, monthly or reversal")
    text: str = Field(description='As the employee recognises it: "Ekstra Data 15GB 01.12.2026"')
    amount_ore: int = Field(description="Deducted from salary, in øre; negative for a reversal")
    quantity: int
    wage_type: str = Field(description="The company's wage type (lønnsart)")
    period: str
    consent_id: uuid.UUID | None = Field(description="The employee's acceptance of the deduction")
    recorded_at: datetime
    reverses_line_id: uuid.UUID | None = Field(description="For a reversal: the line it takes back")
    reason: str | None = Field(description="For a reversal: why")

    @classmethod
    def of(cls, line: Deduction) -> DeductionLineOut:
        return cls(
            id=line.line_id,
            order_id=line.order_id,
            order_url=f"{ORDERS_API}/{line.order_id}",
            product_code=line.product_code,
            kind=line.kind,
            text=line.text,
            amount_ore=line.amount_ore,
            quantity=line.quantity,
            wage_type=line.wage_type,
            period=line.period,
            consent_id=line.consent_id,
            recorded_at=line.recorded_at,
            reverses_line_id=line.reverses_line_id,
            reason=line.reversal_reason,
        )


class PeriodDeductionsOut(BaseModel):
    period: str
    total_ore: int = Field(description="The period's lines summed (reversals subtract)")
    lines: list[DeductionLineOut]

    @classmethod
    def of(cls, group: PeriodLines) -> PeriodDeductionsOut:
        return cls(
            period=group.period,
            total_ore=group.total_ore,
            lines=[DeductionLineOut.of(line) for line in group.lines],
        )


class MyDeductionsOut(BaseModel):
    periods: list[PeriodDeductionsOut] = Field(description="Newest period first")


@router.get(
    "/deductions",
    tags=["deductions"],
    responses=problem_responses(ErrorCode.NOT_SIGNED_IN),
)
async def my_deductions(who: SignedInEmployee, uow: Uow) -> MyDeductionsOut:
    """The signed-in employee's salary deductions, per pay period with sums, each line with its order."""
    return MyDeductionsOut(
        periods=[PeriodDeductionsOut.of(g) for g in await deductions_of(uow, who.employee_id)]
    )


class EmployeeDeductionsOut(BaseModel):
    employee_id: uuid.UUID
    employee_number: str
    name: str | None
    total_ore: int
    lines: list[DeductionLineOut]

    @classmethod
    def of(cls, total: EmployeeTotal) -> EmployeeDeductionsOut:
        return cls(
            employee_id=total.employee_id,
            employee_number=total.employee_number,
            name=total.name,
            total_ore=total.total_ore,
            lines=[DeductionLineOut.of(line) for line in total.lines],
        )


class CompanyPeriodOut(BaseModel):
    period: str
    total_ore: int
    employees: list[EmployeeDeductionsOut] = Field(description="By employee number")


_ADMIN = (ErrorCode.NOT_SIGNED_IN, ErrorCode.NOT_AN_ADMINISTRATOR)
_WORKER = (ErrorCode.PAYROLL_UNAVAILABLE, ErrorCode.PAYROLL_REFUSED, ErrorCode.INVALID_PERIOD)


@router.get(
    "/admin/payroll/deductions",
    tags=["admin"],
    responses=problem_responses(*_ADMIN, ErrorCode.INVALID_PERIOD, INVALID_REQUEST),
)
async def company_period(
    request: Request,
    who: SignedInEmployee,
    uow: Uow,
    period: Annotated[
        str | None, Query(max_length=20, description="the pay period, YYYY-MM; this month's by default")
    ] = None,
) -> CompanyPeriodOut:
    """The company's deduction lines in the period, per employee with totals (the portal's copy of
    what the payroll-worker recorded)."""
    if period is None:
        period = period_of(request.app.state.clock())
    _actor, found = await company_deductions(uow, who.employee_id, period)
    return CompanyPeriodOut(
        period=found.period,
        total_ore=found.total_ore,
        employees=[EmployeeDeductionsOut.of(e) for e in found.employees],
    )


@router.get(
    "/admin/payroll/periods",
    tags=["admin"],
    responses=problem_responses(*_ADMIN, *_WORKER),
)
async def list_periods(who: SignedInEmployee, uow: Uow, payroll: Payroll) -> list[PeriodStatus]:
    """The company's pay periods as the payroll-worker has them: open or closed, lines, total."""
    _actor, periods = await payroll_periods(uow, payroll, who.employee_id)
    return periods


@router.post(
    "/admin/payroll/periods/{period}/close",
    tags=["admin"],
    responses=problem_responses(*_ADMIN, CSRF_FAILED, *_WORKER),
)
async def close(period: PeriodParam, who: SignedInEmployee, uow: Uow, payroll: Payroll) -> ClosedPeriod:
    """Close the company's pay period: the payroll-worker generates its recurring lines and freezes
    it (closing twice changes nothing: 200 with 0 lines). Each close is in the audit log."""
    return await close_period(uow, payroll, actor_id=who.employee_id, period=period)


@router.get(
    "/admin/payroll/periods/{period}/export",
    tags=["admin"],
    responses={
        200: {
            "description": "The file: json, or Visma's / Tripletex's semicolon-separated import (CSV)",
            "content": {"application/json": {}, "text/csv": {}},
        },
        **problem_responses(*_ADMIN, *_WORKER, INVALID_REQUEST),
    },
)
async def export(
    period: PeriodParam,
    who: SignedInEmployee,
    uow: Uow,
    payroll: Payroll,
    format: Annotated[ExportFormat, Query(description="json, visma or tripletex")] = ExportFormat.JSON,
) -> Response:
    """The period's deduction lines for the payroll system, as a download (each line keeps its
    stable id, so a re-import never charges twice)."""
    file = await export_period(uow, payroll, actor_id=who.employee_id, period=period, export_format=format)
    return Response(
        content=file.content,
        media_type=file.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{file.filename}"',
            "Cache-Control": "no-store",
        },
    )
