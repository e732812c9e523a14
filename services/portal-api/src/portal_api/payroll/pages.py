"""The deductions' pages: Mine lønnstrekk (the employee's lines by period, each linked to its order)
and the administrator's Lønnstrekk (the periods and their status, totals per employee, Lukk
periode with a confirmation first, and the Visma / Tripletex / JSON downloads)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from portal_api.admin.pages import local_time
from portal_api.deps import SignedInEmployee, Uow, require_csrf
from portal_api.employees import signed_in_employee
from portal_api.errors import DomainError, ErrorCode
from portal_api.i18n import Translator, pick_language
from portal_api.models import Deduction, Employee
from portal_api.pages.rendering import render
from portal_api.payroll.client import PeriodStatus
from portal_api.payroll.domain import ExportFormat, period_of, valid_period
from portal_api.payroll.service import close_period, company_deductions, deductions_of, payroll_periods
from portal_api.payroll.views import payroll_system
from portal_api.unit_of_work import UnitOfWork

router = APIRouter(include_in_schema=False)

MY_PATH = "/lonnstrekk"
ADMIN_PATH = "/admin/lonnstrekk"
CLOSE_PATH = ADMIN_PATH + "/lukk"
PERIOD_PARAM = "periode"
CLOSED_PARAM = "lukket"
ORDERS_PAGE = "/bestillinger"


@dataclass(frozen=True, slots=True, kw_only=True)
class LineRow:
    id: str
    text: str
    kind: str
    amount: str
    order_id: str
    order_href: str
    reversal: bool

    @classmethod
    def of(cls, t: Translator, line: Deduction) -> LineRow:
        return cls(
            id=str(line.line_id),
            text=line.text,
            kind=t(f"deductions.kind.{line.kind}"),
            amount=t.kr(line.amount_ore),
            order_id=str(line.order_id),
            order_href=f"{ORDERS_PAGE}/{line.order_id}",
            reversal=line.reverses_line_id is not None,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PeriodBlock:
    period: str
    total: str
    lines: list[LineRow]


@router.get(MY_PATH)
async def my_deductions_page(request: Request, who: SignedInEmployee, uow: Uow) -> Response:
    """Mine lønnstrekk: the employee's salary deductions by period, newest first, with sums."""
    employee = await signed_in_employee(uow, who.employee_id)
    t = Translator(pick_language(request)[0])
    groups = await deductions_of(uow, employee.id)
    periods = [
        PeriodBlock(period=g.period, total=t.kr(g.total_ore), lines=[LineRow.of(t, d) for d in g.lines])
        for g in groups
    ]
    return render(request, "lonnstrekk.html", {"periods": periods}, employee=employee)


@dataclass(frozen=True, slots=True, kw_only=True)
class PeriodRow:
    period: str
    status: str  # open | closed
    closed_at: str | None
    lines: int
    total: str
    href: str


@dataclass(frozen=True, slots=True, kw_only=True)
class EmployeeRow:
    name: str
    employee_number: str
    total: str
    lines: list[LineRow]


def _period_href(period: str) -> str:
    return f"{ADMIN_PATH}?{urlencode({PERIOD_PARAM: period})}"


def _period_rows(t: Translator, periods: list[PeriodStatus]) -> list[PeriodRow]:
    return [
        PeriodRow(
            period=p.period,
            status=p.status,
            closed_at=local_time(p.closed_at) if p.closed_at else None,
            lines=p.lines,
            total=t.kr(p.total_ore),
            href=_period_href(p.period),
        )
        for p in sorted(periods, key=lambda p: p.period, reverse=True)
    ]


def _refused(request: Request, error: DomainError, employee: Employee | None) -> Response:
    return render(request, "error.html", {"message_key": "admin.only"}, employee=employee, status_code=403)


async def _admin_page(
    request: Request,
    uow: UnitOfWork,
    who: SignedInEmployee,
    period: str,
    *,
    confirm_close: bool = False,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    t = Translator(pick_language(request)[0])
    if not valid_period(period):
        period = period_of(request.app.state.clock())
    try:
        actor, found = await company_deductions(uow, who.employee_id, period)
    except DomainError as refused:
        if refused.code is not ErrorCode.NOT_AN_ADMINISTRATOR:
            raise
        return _refused(request, refused, await uow.employees.get(who.employee_id))
    periods: list[PeriodRow] | None
    try:
        _actor, statuses = await payroll_periods(uow, payroll_system(request), who.employee_id)
        periods = _period_rows(t, statuses)
    except DomainError as unavailable:
        if unavailable.code not in (ErrorCode.PAYROLL_UNAVAILABLE, ErrorCode.PAYROLL_REFUSED):
            raise
        periods = None  # the page says the payroll system does not answer; the totals still show
    this = next((p for p in periods or [] if p.period == period), None)
    exports = {
        f.value: f"/api/v1/admin/payroll/periods/{period}/export?{urlencode({'format': f.value})}"
        for f in ExportFormat
    }
    return render(
        request,
        "admin_lonnstrekk.html",
        {
            "company": actor.company.name,
            "period": period,
            "period_status": this.status if this else None,
            "periods": periods,
            "employees": [
                EmployeeRow(
                    name=e.name or e.employee_number,
                    employee_number=e.employee_number,
                    total=t.kr(e.total_ore),
                    lines=[LineRow.of(t, d) for d in e.lines],
                )
                for e in found.employees
            ],
            "total": t.kr(found.total_ore),
            "exports": exports,
            "confirm_close": confirm_close,
            "closed_now": request.query_params.get(CLOSED_PARAM),
            "error": error,
            "close_path": CLOSE_PATH,
        },
        employee=actor,
        status_code=status_code,
    )


@router.get(ADMIN_PATH)
async def admin_deductions_page(request: Request, who: SignedInEmployee, uow: Uow) -> Response:
    """Lønnstrekk: a period's deductions per employee with totals (`?periode=YYYY-MM`, this month
    by default), the company's periods and their status, the downloads and Lukk periode."""
    return await _admin_page(request, uow, who, request.query_params.get(PERIOD_PARAM, ""))


@router.post(CLOSE_PATH, dependencies=[Depends(require_csrf)])
async def close_period_page(
    request: Request,
    who: SignedInEmployee,
    uow: Uow,
    periode: Annotated[str, Form(max_length=20)] = "",
    bekreftet: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    """Lukk periode: first the confirmation, then, confirmed, the close and the page again
    (Post/Redirect/Get)."""
    t = Translator(pick_language(request)[0])
    if not valid_period(periode):
        return await _admin_page(request, uow, who, "", error=t("payroll.error.bad_period"), status_code=400)
    if bekreftet != "1":
        return await _admin_page(request, uow, who, periode, confirm_close=True)
    try:
        closed = await close_period(
            uow,
            payroll_system(request),
            actor_id=who.employee_id,
            period=periode,
            clock=request.app.state.clock,
        )
    except DomainError as error:
        if error.code is ErrorCode.NOT_AN_ADMINISTRATOR:
            return _refused(request, error, await uow.employees.get(who.employee_id))
        key = "payroll.error.unavailable" if error.code is ErrorCode.PAYROLL_UNAVAILABLE else None
        status = 503 if error.code is ErrorCode.PAYROLL_UNAVAILABLE else 409
        return await _admin_page(
            request, uow, who, periode, error=t(key) if key else error.detail, status_code=status
        )
    query = urlencode({PERIOD_PARAM: periode, CLOSED_PARAM: str(closed.recurring_lines_generated)})
    return RedirectResponse(f"{ADMIN_PATH}?{query}", status_code=303)
