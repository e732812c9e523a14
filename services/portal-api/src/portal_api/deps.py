"""Request dependencies shared by the views: the unit of work, who is signed in, the CSRF check."""

from __future__ import annotations

import hmac
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from mport_shared.service import ServiceRuntime
from sqlalchemy.ext.asyncio import AsyncSession

from portal_api.errors import NotSignedIn
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


@dataclass(frozen=True, slots=True)
class SignedIn:
    """Who made the request."""

    employee_id: uuid.UUID


async def signed_in(request: Request) -> SignedIn:
    """Who is signed in: the one answer for the API, the pages and the event stream.

    From the session alone, so no database connection is taken (an event stream lives for hours)
    and nothing is loaded that the route does not need: each use case or query loads what it
    reads of the employee through the unit of work, and refuses with NotSignedIn if the session
    names nobody on file. The API answers NotSignedIn with 401, a page with the sign-in page."""
    raw = request.session.get(SESSION_EMPLOYEE)
    if raw:
        try:
            return SignedIn(uuid.UUID(str(raw)))
        except ValueError:
            pass
    raise NotSignedIn()


SignedInEmployee = Annotated[SignedIn, Depends(signed_in)]
