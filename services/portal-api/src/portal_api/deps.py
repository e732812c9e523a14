"""Request dependencies shared by the views: database session, signed-in employee, CSRF check."""

from __future__ import annotations

import hmac
import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from mport_shared.service import ServiceRuntime
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import raiseload

from portal_api.errors import ErrorCode
from portal_api.models import Employee
from portal_api.problems import CSRF_FAILED, Problem
from portal_api.settings import PortalSettings
from portal_api.unit_of_work import SqlAlchemyUnitOfWork, SqlUnitsOfWork, UnitOfWork

SESSION_EMPLOYEE = "employee_id"
SESSION_CSRF = "csrf"
CSRF_COOKIE = "csrftoken"
CSRF_HEADER = "X-CSRF-Token"
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def get_runtime(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


def get_settings(request: Request) -> PortalSettings:
    settings: PortalSettings = request.app.state.settings
    return settings


async def get_db(request: Request) -> AsyncIterator[AsyncSession]:
    # Not Depends(get_runtime): FastAPI runs a plain-def dependency in its thread pool, a thread
    # hand-off on every request for one attribute lookup.
    async with get_runtime(request).sessions() as session:
        yield session


Db = Annotated[AsyncSession, Depends(get_db)]
Settings = Annotated[PortalSettings, Depends(get_settings)]


async def get_uow(request: Request, db: Db) -> SqlAlchemyUnitOfWork:
    """The request's unit of work, on the request's session."""
    units: SqlUnitsOfWork = request.app.state.units
    return units.on(db)


Uow = Annotated[UnitOfWork, Depends(get_uow)]


async def require_csrf(request: Request) -> None:
    """Double-submit check: unsafe requests carry the session's CSRF token in a header or form field."""
    if request.method not in _UNSAFE:
        return
    expected = request.session.get(SESSION_CSRF)
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get("csrf_token")
        sent = value if isinstance(value, str) else None
    if not expected or not sent or not hmac.compare_digest(str(expected), sent):
        raise Problem.of(
            CSRF_FAILED,
            f"Missing or wrong CSRF token: send the {CSRF_HEADER} header "
            f"with the value of the {CSRF_COOKIE} cookie.",
        )


def _signed_in_id(request: Request) -> uuid.UUID:
    raw = request.session.get(SESSION_EMPLOYEE)
    if raw:
        try:
            return uuid.UUID(str(raw))
        except ValueError:
            pass
    raise _not_signed_in()


def _not_signed_in() -> Problem:
    return Problem.of(ErrorCode.NOT_SIGNED_IN, "Sign in first (Bruk jobbkonto).")


async def signed_in_id(request: Request) -> uuid.UUID:
    """Who is signed in, from the session alone: for use cases that load the employee themselves."""
    return _signed_in_id(request)


SignedInId = Annotated[uuid.UUID, Depends(signed_in_id)]


async def current_employee(request: Request, db: Db) -> Employee:
    """The signed-in employee with the company, the subscription, its services and SIM cards."""
    employee = await db.get(Employee, _signed_in_id(request))
    if employee is None:
        raise _not_signed_in()
    return employee


CurrentEmployee = Annotated[Employee, Depends(current_employee)]


async def signed_in_employee(request: Request, db: Db) -> Employee:
    """The signed-in employee and the company, in one query, for views that need no more."""
    employee = await db.get(Employee, _signed_in_id(request), options=[raiseload(Employee.subscription)])
    if employee is None:
        raise _not_signed_in()
    return employee


SignedInEmployee = Annotated[Employee, Depends(signed_in_employee)]


async def current_admin(employee: CurrentEmployee) -> Employee:
    if not employee.is_admin:
        raise Problem(403, "Only the company's mPort administrator may do this.", title="Forbidden")
    return employee


CurrentAdmin = Annotated[Employee, Depends(current_admin)]
