"""The administrator's pages: Ansatte (the company's employees), one employee's page (correct the
number, switch self-service, unlock, each confirmed first) and Endringslogg (the audit log)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from portal_api.admin.domain import (
    ChangeEmployee,
    EmployeeState,
    apply_change,
    changed_fields,
    normalize_msisdn,
)
from portal_api.admin.listing import AdminCursors, BadCursor
from portal_api.admin.refusals import sms_refusals_of
from portal_api.admin.service import (
    LoggedChange,
    StaffMember,
    StaffPosition,
    administrator,
    audit_log_page,
    change_employee,
    list_staff,
    staff_member,
)
from portal_api.deps import SignedInEmployee, Uow, require_csrf
from portal_api.errors import DomainError, ErrorCode
from portal_api.i18n import Translator, pick_language
from portal_api.models import Employee
from portal_api.pages.rendering import render
from portal_api.pages.views import OSLO
from portal_api.unit_of_work import UnitOfWork
from portal_api.verification_rules import MAX_CONSECUTIVE_VERIFICATION_FAILURES

router = APIRouter(include_in_schema=False)

STAFF_PATH = "/admin/ansatte"
LOG_PATH = "/admin/endringslogg"
CURSOR_PARAM = "etter"
PAGE_SIZE = 50
SAVED_PARAM = "lagret"
# The page's words for a refusal; any other refusal shows its detail.
_PAGE_ERRORS = {
    ErrorCode.INVALID_MSISDN: "admin.error.invalid_msisdn",
    ErrorCode.MSISDN_TAKEN: "admin.error.msisdn_taken",
    ErrorCode.OPEN_ORDERS_ON_NUMBER: "admin.error.open_orders",
    ErrorCode.EMPLOYEE_HAS_NO_SUBSCRIPTION: "admin.error.no_subscription",
}
_STATUS = {ErrorCode.INVALID_MSISDN: 422}
# The fields of a change as the pages name them, in the order they are shown.
FIELDS = (
    "msisdn",
    "self_service_allowed",
    "self_service_active",
    "phone_verified_at",
    "verification_failures",
)


def local_time(moment: datetime) -> str:
    return (moment.astimezone(OSLO) if OSLO else moment).strftime("%d.%m.%Y %H:%M")


@dataclass(frozen=True, slots=True, kw_only=True)
class StaffRow:
    id: str
    name: str
    email: str
    employee_number: str
    is_admin: bool
    msisdn: str | None
    plan: str | None
    self_service: str  # active / not_active / off
    verified: str | None  # dd.mm.yyyy hh:mm
    locked: bool
    failures: int

    @classmethod
    def of(cls, member: StaffMember) -> StaffRow:
        employee, state = member.employee, member.state
        return cls(
            id=str(employee.id),
            name=employee.name,
            email=employee.email,
            employee_number=employee.employee_number,
            is_admin=employee.is_admin,
            msisdn=state.msisdn,
            plan=member.plan_name,
            self_service=_self_service(state),
            verified=local_time(state.phone_verified_at) if state.phone_verified_at else None,
            locked=state.locked,
            failures=state.verification_failures,
        )


def _self_service(state: EmployeeState) -> str:
    if not state.self_service_allowed:
        return "off"
    return "active" if state.self_service_active else "not_active"


@dataclass(frozen=True, slots=True)
class FieldChange:
    label: str
    before: str
    after: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LogRow:
    at: str
    actor: str
    subject: str
    subject_id: str
    changes: list[FieldChange]


def field_changes(t: Translator, before: dict[str, Any], after: dict[str, Any]) -> list[FieldChange]:
    """A change in words: one line per field, in the pages' order."""
    names = [f for f in FIELDS if f in before or f in after] + sorted(
        (set(before) | set(after)) - set(FIELDS)
    )
    return [
        FieldChange(t(f"admin.field.{n}"), _value(t, n, before.get(n)), _value(t, n, after.get(n)))
        for n in names
    ]


def _value(t: Translator, name: str, value: Any) -> str:
    if isinstance(value, dict):  # a policy's rules or wage types
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if value is None:
        return t("admin.value.none")
    if isinstance(value, bool):
        return t(f"admin.value.{str(value).lower()}")
    if name == "phone_verified_at" and isinstance(value, str):
        try:
            return local_time(datetime.fromisoformat(value))
        except ValueError:
            return value
    return str(value)


def _refused(request: Request, error: DomainError, employee: Employee | None) -> Response:
    """Not an administrator (403) or not the company's employee (404), as a page."""
    key = "admin.only" if error.code is ErrorCode.NOT_AN_ADMINISTRATOR else "admin.not_found"
    status = 403 if error.code is ErrorCode.NOT_AN_ADMINISTRATOR else 404
    back = {"back_href": STAFF_PATH, "back_key": "admin.back"} if status == 404 else {}
    return render(request, "error.html", {"message_key": key, **back}, employee=employee, status_code=status)


async def _me(uow: UnitOfWork, employee_id: uuid.UUID) -> Employee | None:
    """The signed-in employee for the page's frame, whoever they are (None only if gone)."""
    return await uow.employees.get(employee_id)


@router.get(STAFF_PATH)
async def staff_page(request: Request, who: SignedInEmployee, uow: Uow) -> Response:
    """Ansatte: the company's employees with number, self-service, verified and locked."""
    cursors = AdminCursors(request.app.state.settings.effective_session_secret)
    cursor = request.query_params.get(CURSOR_PARAM)
    try:
        actor = await administrator(uow, who.employee_id)
        after = cursors.load_staff(actor.company_id, cursor) if cursor else None
        actor, members = await list_staff(uow, who.employee_id, after=after, limit=PAGE_SIZE + 1)
    except DomainError as error:
        return _refused(request, error, await _me(uow, who.employee_id))
    except BadCursor:
        return _bad_page(request, STAFF_PATH, actor)
    older = None
    if len(members) > PAGE_SIZE:
        members = members[:PAGE_SIZE]
        last = members[-1].employee
        next_cursor = cursors.dump_staff(actor.company_id, StaffPosition(last.name, last.id))
        older = f"{STAFF_PATH}?{urlencode({CURSOR_PARAM: next_cursor})}"
    return render(
        request,
        "admin_ansatte.html",
        {
            "company": actor.company.name,
            "rows": [StaffRow.of(m) for m in members],
            "more_href": older,
            "first_href": STAFF_PATH if cursor else None,
        },
        employee=actor,
    )


def _bad_page(request: Request, path: str, actor: Employee) -> Response:
    return render(
        request,
        "error.html",
        {"message_key": "admin.bad_page", "back_href": path, "back_key": "admin.first_page"},
        employee=actor,
        status_code=400,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingChange:
    """A change the administrator is asked to confirm: the form's fields, and what it will do."""

    fields: dict[str, str]
    changes: list[FieldChange]
    ends_sessions: bool


def _form_change(form: dict[str, str]) -> ChangeEmployee:
    """The change a form asks for: `endring` names it (nummer, selvbetjening, laas-opp)."""
    match form.get("endring"):
        case "nummer":
            return ChangeEmployee(msisdn=form.get("msisdn", ""))
        case "selvbetjening":
            return ChangeEmployee(self_service_allowed=form.get("selvbetjening") == "på")
        case "laas-opp":
            return ChangeEmployee(unlock=True)
    return ChangeEmployee()


async def _employee_page(
    request: Request,
    uow: UnitOfWork,
    actor: Employee,
    member: StaffMember,
    *,
    pending: PendingChange | None = None,
    error: str | None = None,
    msisdn_typed: str | None = None,
    status_code: int = 200,
) -> Response:
    employee = member.employee
    refusals = await sms_refusals_of(uow, company_id=actor.company_id, employee_id=employee.id)
    return render(
        request,
        "admin_ansatt.html",
        {
            "row": StaffRow.of(member),
            "max_failures": MAX_CONSECUTIVE_VERIFICATION_FAILURES,
            "pending": pending,
            "error": error,
            "msisdn_typed": msisdn_typed,
            "saved": request.query_params.get(SAVED_PARAM) == "1",
            "sms_refusals": [
                {"at": local_time(r.at), "reason_code": r.reason_code, "msisdn": r.msisdn} for r in refusals
            ],
        },
        employee=actor,
        status_code=status_code,
    )


@router.get(STAFF_PATH + "/{employee_id}")
async def employee_page(
    request: Request, employee_id: uuid.UUID, who: SignedInEmployee, uow: Uow
) -> Response:
    try:
        member = await staff_member(uow, who.employee_id, employee_id)
    except DomainError as error:
        return _refused(request, error, await _me(uow, who.employee_id))
    actor = await administrator(uow, who.employee_id)
    return await _employee_page(request, uow, actor, member)


@router.post(STAFF_PATH + "/{employee_id}", dependencies=[Depends(require_csrf)])
async def change_employee_page(
    request: Request,
    employee_id: uuid.UUID,
    who: SignedInEmployee,
    uow: Uow,
    endring: Annotated[str, Form(max_length=20)] = "",
    msisdn: Annotated[str, Form(max_length=32)] = "",
    selvbetjening: Annotated[str, Form(max_length=10)] = "",
    bekreftet: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    """A form's change: first shown for confirmation (before → after), then, confirmed, made and
    the page shown again (Post/Redirect/Get)."""
    form = {"endring": endring, "msisdn": msisdn, "selvbetjening": selvbetjening}
    change = _form_change(form)
    try:
        member = await staff_member(uow, who.employee_id, employee_id)
    except DomainError as error:
        return _refused(request, error, await _me(uow, who.employee_id))
    actor = await administrator(uow, who.employee_id)
    t = Translator(pick_language(request)[0])
    try:
        if bekreftet != "1":
            number = normalize_msisdn(change.msisdn) if change.msisdn is not None else None
            before = member.state
            old, new = changed_fields(before, apply_change(before, change, msisdn=number))
            pending = PendingChange(
                fields={**form, "msisdn": number or ""},
                changes=field_changes(t, old, new),
                ends_sessions="msisdn" in new,
            )
            return await _employee_page(request, uow, actor, member, pending=pending)
        outcome = await change_employee(uow, actor_id=who.employee_id, employee_id=employee_id, change=change)
    except DomainError as error:
        if error.code in (ErrorCode.NOT_AN_ADMINISTRATOR, ErrorCode.EMPLOYEE_NOT_FOUND):
            return _refused(request, error, actor)
        member = await staff_member(uow, who.employee_id, employee_id)
        key = _PAGE_ERRORS.get(error.code)
        return await _employee_page(
            request,
            uow,
            actor,
            member,
            error=t(key) if key else error.detail,
            msisdn_typed=msisdn if change.msisdn is not None else None,
            status_code=_STATUS.get(error.code, 409),
        )
    saved = f"?{SAVED_PARAM}=1" if outcome.entry is not None else ""
    return RedirectResponse(f"{STAFF_PATH}/{employee_id}{saved}", status_code=303)


@router.get(LOG_PATH)
async def audit_log_pages(request: Request, who: SignedInEmployee, uow: Uow) -> Response:
    """Endringslogg: every change to the company's employees, newest first."""
    t = Translator(pick_language(request)[0])
    cursors = AdminCursors(request.app.state.settings.effective_session_secret)
    cursor = request.query_params.get(CURSOR_PARAM)
    try:
        actor = await administrator(uow, who.employee_id)
        before_id = cursors.load_log(actor.company_id, cursor) if cursor else None
        actor, entries = await audit_log_page(uow, who.employee_id, before_id=before_id, limit=PAGE_SIZE + 1)
    except DomainError as error:
        return _refused(request, error, await _me(uow, who.employee_id))
    except BadCursor:
        return _bad_page(request, LOG_PATH, actor)
    older = None
    if len(entries) > PAGE_SIZE:
        entries = entries[:PAGE_SIZE]
        next_cursor = cursors.dump_log(actor.company_id, entries[-1].entry.id)
        older = f"{LOG_PATH}?{urlencode({CURSOR_PARAM: next_cursor})}"
    return render(
        request,
        "admin_endringslogg.html",
        {
            "rows": [_log_row(t, e) for e in entries],
            "more_href": older,
            "first_href": LOG_PATH if cursor else None,
        },
        employee=actor,
    )


def _log_row(t: Translator, logged: LoggedChange) -> LogRow:
    entry = logged.entry
    return LogRow(
        at=local_time(entry.at),
        actor=logged.actor_name,
        subject=logged.subject_name,
        subject_id=str(entry.subject_employee_id),
        changes=field_changes(t, entry.before, entry.after),
    )
