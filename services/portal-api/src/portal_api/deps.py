"""Request dependencies shared by the views: the unit of work, who is signed in, the CSRF check."""

from __future__ import annotations

import hmac
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from mport_shared.logging import get_logger
from mport_shared.service import ServiceRuntime
from sqlalchemy.ext.asyncio import AsyncSession

from portal_api.auth.sessions import (
    Clock,
    SessionGuard,
    SessionPolicy,
    SessionRefused,
    forget,
    token_hash,
    touch,
)
from portal_api.errors import NotSignedIn
from portal_api.problems import CSRF_FAILED, Problem
from portal_api.settings import PortalSettings
from portal_api.unit_of_work import SqlAlchemyUnitOfWork, SqlUnitsOfWork, UnitOfWork

log = get_logger(__name__)

# In the signed session cookie: the signed-in employee and the session's token (whose record, in
# web_sessions, says whether it is still on), the CSRF token, and why the sign-in page is shown
# (a SessionEnd, or "signed_out").
SESSION_EMPLOYEE = "employee_id"
SESSION_TOKEN = "sid"  # noqa: S105 (a key of the cookie, not a secret)
SESSION_CSRF = "csrf"
SESSION_NOTICE = "notice"
SIGNED_OUT = "signed_out"
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


def session_policy(request: Request) -> SessionPolicy:
    policy: SessionPolicy = request.app.state.session_policy
    return policy


def clock(request: Request) -> Clock:
    now: Clock = request.app.state.clock
    return now


def session_token(request: Request) -> str | None:
    token = request.session.get(SESSION_TOKEN)
    return token if isinstance(token, str) and token else None


def session_guard(request: Request) -> SessionGuard | None:
    """The session the cookie presents, to be checked when the request reads the employee."""
    try:
        who = _from_cookie(request)
    except NotSignedIn:
        return None
    return SessionGuard(
        employee_id=who.employee_id,
        token_hash=who.session,
        policy=session_policy(request),
        now=clock(request)(),
    )


async def get_uow(request: Request, db: Db) -> AsyncIterator[SqlAlchemyUnitOfWork]:
    """The request's unit of work, on the request's session, checking the signed-in session when
    it reads the employee."""
    async with _request_uow(request, db, one_statement=False) as uow:
        yield uow


async def get_placing_uow(request: Request, db: Db) -> AsyncIterator[SqlAlchemyUnitOfWork]:
    """As get_uow, for placing an order: a one-statement unit of work (SqlAlchemyUnitOfWork)."""
    async with _request_uow(request, db, one_statement=True) as uow:
        yield uow


@asynccontextmanager
async def _request_uow(
    request: Request, db: AsyncSession, *, one_statement: bool
) -> AsyncIterator[SqlAlchemyUnitOfWork]:
    """Afterwards, on the same connection, at most once a minute the session's last_seen_at moves
    on, and a session found timed out loses its record: a unit of work leaves no uncommitted
    write behind (it rolls back what it did not commit), so committing now commits only that."""
    units: SqlUnitsOfWork = request.app.state.units
    guard = session_guard(request)
    try:
        yield units.on(db, guard=guard, one_statement=one_statement)
    finally:
        if guard is not None and (guard.touch_due or guard.expired):
            try:
                if guard.expired:
                    await forget(db, guard.token_hash)
                else:
                    await touch(db, guard.token_hash, guard.now)
                await db.commit()
            except Exception:
                log.warning("could not update the session's record", exc_info=True)


Uow = Annotated[UnitOfWork, Depends(get_uow)]
PlacingUow = Annotated[UnitOfWork, Depends(get_placing_uow)]


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
    """Who made the request, and the session they made it in (the hash of its token)."""

    employee_id: uuid.UUID
    session: bytes


async def signed_in(request: Request) -> SignedIn:
    """Who is signed in: the one answer for the API, the pages and the event stream.

    From the cookie alone, so no database connection is taken (an event stream lives for hours)
    and nothing is loaded that the route does not need: each use case or query loads what it
    reads of the employee through the unit of work, which checks that the session is still on
    (auth.sessions.SessionGuard) in that same query, and refuses with NotSignedIn if it is not or
    names nobody on file. The API answers NotSignedIn with 401, a page with the sign-in page."""
    return _from_cookie(request)


def forget_session(request: Request, refused: NotSignedIn) -> None:
    """After a refusal: a session that is over leaves the cookie (the browser stops sending it),
    and the sign-in page will say why."""
    if isinstance(refused, SessionRefused):
        log.info(
            "session refused",
            reason=refused.why.value,
            employee_id=str(request.session.get(SESSION_EMPLOYEE)),
            path=request.url.path,
        )
        request.session.pop(SESSION_TOKEN, None)
        request.session.pop(SESSION_EMPLOYEE, None)
        request.session[SESSION_NOTICE] = refused.why.value


def _from_cookie(request: Request) -> SignedIn:
    raw = request.session.get(SESSION_EMPLOYEE)
    token = session_token(request)
    if raw and token:
        try:
            return SignedIn(uuid.UUID(str(raw)), token_hash(token))
        except ValueError:
            pass
    raise NotSignedIn()


SignedInEmployee = Annotated[SignedIn, Depends(signed_in)]
