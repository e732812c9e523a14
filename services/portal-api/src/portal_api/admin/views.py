"""The administrator's API: `GET /api/v1/admin/employees`, `PATCH /api/v1/admin/employees/{id}`
and `GET /api/v1/admin/audit-log`. Thin: HTTP in, a use case of admin.service, JSON out."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from portal_api.admin.domain import ChangeEmployee
from portal_api.admin.listing import (
    DEFAULT_PAGE_SIZE,
    MAX_CURSOR_LENGTH,
    MAX_PAGE_SIZE,
    AdminCursors,
    BadCursor,
)
from portal_api.admin.policy import company_policy, replace_policy
from portal_api.admin.service import (
    LoggedChange,
    StaffMember,
    StaffPosition,
    administrator,
    audit_log_page,
    change_employee,
    list_staff,
)
from portal_api.catalog.policy import PolicyDocument
from portal_api.deps import SignedInEmployee, Uow, require_csrf
from portal_api.errors import ErrorCode
from portal_api.problems import (
    BODY_TOO_LARGE,
    CSRF_FAILED,
    INVALID_CURSOR,
    INVALID_REQUEST,
    Problem,
    problem_responses,
)
from portal_api.settings import PortalSettings
from portal_api.verification_rules import MAX_CONSECUTIVE_VERIFICATION_FAILURES

router = APIRouter(prefix="/api/v1/admin", tags=["admin"], dependencies=[Depends(require_csrf)])

_LINK_DOC = {
    "Link": {
        "description": 'The next page, when there is one: `<…?limit=50&cursor=…>; rel="next"`',
        "schema": {"type": "string"},
    }
}


class EmployeeOut(BaseModel):
    id: uuid.UUID
    name: str
    email: str
    employee_number: str
    is_admin: bool
    msisdn: str | None = Field(description="The subscription's number (E.164 digits); null without one")
    plan_code: str | None
    plan_name: str | None
    self_service_active: bool = Field(description="Whether the employee can order now")
    self_service_allowed: bool = Field(description="The administrator's switch")
    phone_verified_at: datetime | None = Field(description="When the current number was confirmed by SMS")
    verification_failures: int = Field(description="Wrong one-time codes in a row")
    locked: bool = Field(
        description=f"{MAX_CONSECUTIVE_VERIFICATION_FAILURES} or more wrong codes in a row: no more "
        "codes until the administrator unlocks (PATCH with unlock: true)"
    )

    @classmethod
    def of(cls, member: StaffMember) -> EmployeeOut:
        employee, state = member.employee, member.state
        return cls(
            id=employee.id,
            name=employee.name,
            email=employee.email,
            employee_number=employee.employee_number,
            is_admin=employee.is_admin,
            msisdn=state.msisdn,
            plan_code=member.plan_code,
            plan_name=member.plan_name,
            self_service_active=state.self_service_active,
            self_service_allowed=state.self_service_allowed,
            phone_verified_at=state.phone_verified_at,
            verification_failures=state.verification_failures,
            locked=state.locked,
        )


def _without_nulls(schema: dict[str, Any]) -> None:
    """The document says what the validator does: a field is left out, never null."""
    for field in schema.get("properties", {}).values():
        kinds = [kind for kind in field.pop("anyOf", []) if kind.get("type") != "null"]
        if len(kinds) == 1:
            field.update(kinds[0])
        field.pop("default", None)


class EmployeePatch(BaseModel):
    """JSON merge patch (RFC 7396) of an employee: the fields given change, the others stay. None
    of them can be removed, so a null is refused."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_without_nulls)

    msisdn: str | None = Field(
        default=None,
        max_length=32,
        description="The corrected number: digits, with the country code (4791234567, +47 912 34 567) "
        "or 8 digits of a Norwegian one. Resets the verification and ends the employee's sessions.",
    )
    self_service_allowed: StrictBool | None = Field(
        default=None,
        description="Off: self-service is off at once. On: active again if the number is confirmed.",
    )
    unlock: Literal[True] | None = Field(default=None, description="Set the wrong codes in a row back to 0")
    verification_failures: Literal[0] | None = Field(default=None, description="The same as unlock: true")

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict) and (nulls := sorted(k for k, v in data.items() if v is None)):
            raise ValueError(f"{', '.join(nulls)} cannot be removed (null); leave it out to keep it")
        return data

    def change(self) -> ChangeEmployee:
        return ChangeEmployee(
            msisdn=self.msisdn,
            self_service_allowed=self.self_service_allowed,
            unlock=bool(self.unlock) or self.verification_failures == 0,
        )


class PersonOut(BaseModel):
    id: uuid.UUID
    name: str


class AuditEntryOut(BaseModel):
    id: int
    at: datetime
    action: str = Field(description="What was done: employee.updated")
    actor: PersonOut = Field(description="The administrator who made the change")
    subject: PersonOut = Field(description="The employee changed")
    before: dict[str, Any] = Field(description="The changed fields as they were")
    after: dict[str, Any] = Field(description="The changed fields as they became")

    @classmethod
    def of(cls, logged: LoggedChange) -> AuditEntryOut:
        entry = logged.entry
        return cls(
            id=entry.id,
            at=entry.at,
            action=entry.action,
            actor=PersonOut(id=entry.actor_employee_id, name=logged.actor_name),
            subject=PersonOut(id=entry.subject_employee_id, name=logged.subject_name),
            before=entry.before,
            after=entry.after,
        )


def cursors(request: Request) -> AdminCursors:
    settings: PortalSettings = request.app.state.settings
    return AdminCursors(settings.effective_session_secret)


def _bad_cursor() -> Problem:
    return Problem.of(
        INVALID_CURSOR,
        "The cursor is not valid (changed, or made for someone else): start again without one.",
    )


Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="entries per page")]
Cursor = Annotated[
    str | None,
    Query(max_length=MAX_CURSOR_LENGTH, description="where the page starts (the last page's Link)"),
]


def _link(response: Response, path: str, limit: int, cursor: str) -> None:
    response.headers["Link"] = f'<{path}?{urlencode({"limit": limit, "cursor": cursor})}>; rel="next"'


@router.get(
    "/employees",
    responses={
        200: {"description": "A page of the company's employees, by name", "headers": _LINK_DOC},
        **problem_responses(
            ErrorCode.NOT_SIGNED_IN, ErrorCode.NOT_AN_ADMINISTRATOR, INVALID_CURSOR, INVALID_REQUEST
        ),
    },
)
async def list_employees(
    request: Request,
    response: Response,
    who: SignedInEmployee,
    uow: Uow,
    limit: Limit = DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
) -> list[EmployeeOut]:
    """The administrator's company's employees, by name then id, a page at a time (`Link`)."""
    signed = cursors(request)
    after = None
    if cursor is not None:
        actor = await administrator(uow, who.employee_id)
        try:
            after = signed.load_staff(actor.company_id, cursor)
        except BadCursor:
            raise _bad_cursor() from None
    actor, members = await list_staff(uow, who.employee_id, after=after, limit=limit + 1)
    if len(members) > limit:
        members = members[:limit]
        last = members[-1].employee
        _link(
            response,
            "/api/v1/admin/employees",
            limit,
            signed.dump_staff(actor.company_id, StaffPosition(last.name, last.id)),
        )
    return [EmployeeOut.of(m) for m in members]


@router.patch(
    "/employees/{employee_id}",
    responses=problem_responses(
        ErrorCode.NOT_SIGNED_IN,
        CSRF_FAILED,
        ErrorCode.NOT_AN_ADMINISTRATOR,
        ErrorCode.EMPLOYEE_NOT_FOUND,
        ErrorCode.EMPLOYEE_HAS_NO_SUBSCRIPTION,
        ErrorCode.MSISDN_TAKEN,
        ErrorCode.OPEN_ORDERS_ON_NUMBER,
        ErrorCode.INVALID_MSISDN,
        INVALID_REQUEST,
        BODY_TOO_LARGE,
    ),
    openapi_extra={
        "requestBody": {
            "content": {
                "application/merge-patch+json": {"schema": {"$ref": "#/components/schemas/EmployeePatch"}}
            }
        }
    },
)
async def patch_employee(
    employee_id: uuid.UUID, body: EmployeePatch, who: SignedInEmployee, uow: Uow
) -> EmployeeOut:
    """Correct the employee's number (which resets their verification and ends their sessions),
    switch their self-service on or off, or unlock them after too many wrong codes. Each request
    that changes something is one audit-log entry with the fields before and after."""
    outcome = await change_employee(
        uow, actor_id=who.employee_id, employee_id=employee_id, change=body.change()
    )
    return EmployeeOut.of(outcome.member)


@router.get(
    "/audit-log",
    responses={
        200: {"description": "A page of the company's audit log, newest first", "headers": _LINK_DOC},
        **problem_responses(
            ErrorCode.NOT_SIGNED_IN, ErrorCode.NOT_AN_ADMINISTRATOR, INVALID_CURSOR, INVALID_REQUEST
        ),
    },
)
async def get_audit_log(
    request: Request,
    response: Response,
    who: SignedInEmployee,
    uow: Uow,
    limit: Limit = DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
) -> list[AuditEntryOut]:
    """Every change an administrator made to the company's employees: who, when, what, before and after."""
    signed = cursors(request)
    before_id = None
    if cursor is not None:
        actor = await administrator(uow, who.employee_id)
        try:
            before_id = signed.load_log(actor.company_id, cursor)
        except BadCursor:
            raise _bad_cursor() from None
    actor, entries = await audit_log_page(uow, who.employee_id, before_id=before_id, limit=limit + 1)
    if len(entries) > limit:
        entries = entries[:limit]
        _link(
            response,
            "/api/v1/admin/audit-log",
            limit,
            signed.dump_log(actor.company_id, entries[-1].entry.id),
        )
    return [AuditEntryOut.of(e) for e in entries]


@router.get(
    "/policy",
    responses=problem_responses(ErrorCode.NOT_SIGNED_IN, ErrorCode.NOT_AN_ADMINISTRATOR),
)
async def get_policy(who: SignedInEmployee, uow: Uow) -> PolicyDocument:
    """The company's mobile policy: per product code or category who pays (employer, employee in
    full or a share in percent or øre, not allowed), the plan the employer covers up to, and the
    company's wage type (lønnsart) per kind of deduction."""
    return await company_policy(uow, who.employee_id)


@router.put(
    "/policy",
    responses=problem_responses(
        ErrorCode.NOT_SIGNED_IN,
        CSRF_FAILED,
        ErrorCode.NOT_AN_ADMINISTRATOR,
        ErrorCode.INVALID_POLICY,
        INVALID_REQUEST,
        BODY_TOO_LARGE,
    ),
)
async def put_policy(body: PolicyDocument, who: SignedInEmployee, uow: Uow) -> PolicyDocument:
    """Replace the company's mobile policy, for new orders (placed ones keep what they were
    placed with). Checked against the catalog: a 422 names each problem in `errors`. Each change
    is one audit-log entry (action policy.updated) with the parts before and after."""
    return await replace_policy(uow, actor_id=who.employee_id, policy=body)
