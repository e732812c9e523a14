"""Sign-in and sign-out. In local mode a development sign-in stands in for the identity provider."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_object_session

from portal_api.auth.sessions import end_session, open_session, token_hash
from portal_api.deps import (
    CSRF_COOKIE,
    SESSION_CSRF,
    SESSION_EMPLOYEE,
    SESSION_NOTICE,
    SESSION_TOKEN,
    SIGNED_OUT,
    Db,
    Settings,
    clock,
    get_runtime,
    require_csrf,
    session_token,
)
from portal_api.models import Employee
from portal_api.pages.rendering import SIGN_IN_PATH, safe_next
from portal_api.problems import Problem
from portal_api.ratelimit import limit_sign_in

router = APIRouter(prefix="/auth", tags=["auth"])


async def start_session(request: Request, response: Response, employee: Employee, *, secure: bool) -> None:
    """Sign the employee in: a new session (its record committed before the answer goes out) and a
    new CSRF token. Nothing of what the browser held before carries over, and a session it was
    signed in with ends: whoever planted or copied an earlier cookie is not signed in by this one
    (session fixation)."""
    earlier = session_token(request)
    request.session.clear()
    now = clock(request)()
    # In the database session the employee was read in, whose connection the request holds: a
    # second one at once would let a burst of sign-ins take the whole pool and wait for itself.
    db = async_object_session(employee)
    if db is None:  # read elsewhere: a database session of its own
        async with get_runtime(request).sessions() as own:
            token = await _rotate(own, earlier=earlier, employee_id=employee.id, now=now)
    else:
        token = await _rotate(db, earlier=earlier, employee_id=employee.id, now=now)
    csrf = secrets.token_urlsafe(32)
    request.session[SESSION_EMPLOYEE] = str(employee.id)
    request.session[SESSION_TOKEN] = token
    request.session[SESSION_CSRF] = csrf
    # Readable by the page's script, which echoes it in the X-CSRF-Token header.
    response.set_cookie(CSRF_COOKIE, csrf, httponly=False, samesite="lax", secure=secure, path="/")


async def _rotate(db: AsyncSession, *, earlier: str | None, employee_id: uuid.UUID, now: datetime) -> str:
    if earlier is not None:
        await end_session(db, earlier)
    token = await open_session(db, employee_id=employee_id, now=now)
    await db.commit()
    return token


@router.post("/dev-login", response_model=None, dependencies=[Depends(limit_sign_in)])
async def dev_login(
    request: Request,
    db: Db,
    settings: Settings,
    email: Annotated[str, Form(max_length=320)],
    next_path: Annotated[str | None, Form(alias="next", max_length=2000)] = None,
) -> Response:
    """Development sign-in: local mode only (404 elsewhere)."""
    if not settings.is_local:
        raise Problem(404, "Not found")
    if _sent_by_browser(request):
        # Login CSRF: another site must not sign a visitor in as someone else. A browser's form
        # carries the token the sign-in page put in the (anonymous) session; scripts and tests
        # without a browser's Origin/Sec-Fetch-Site headers cannot be driven by another site.
        await require_csrf(request)
    employee = await db.scalar(select(Employee).where(func.lower(Employee.email) == email.strip().lower()))
    if employee is None:
        raise Problem(401, f"No employee with the e-mail address {email!r}.", title="Unknown user")
    response: Response
    if "text/html" in request.headers.get("accept", ""):
        response = RedirectResponse(safe_next(next_path), status_code=303)
    else:
        response = JSONResponse({"id": str(employee.id), "name": employee.name, "email": employee.email})
    await start_session(request, response, employee, secure=not settings.is_local)
    return response


def _sent_by_browser(request: Request) -> bool:
    return "origin" in request.headers or "sec-fetch-site" in request.headers


@router.post("/logout", response_model=None, dependencies=[Depends(require_csrf)])
async def logout(request: Request, db: Db) -> Response:
    """Logg ut: the session ends for every copy of its cookie, and this process's event streams of
    it close now (other processes' within live.SESSION_CHECK_S)."""
    token = session_token(request)
    if token is not None:
        await end_session(db, token)
        await db.commit()
        request.app.state.live_hub.end_session(token_hash(token))
    request.session.clear()
    request.session[SESSION_NOTICE] = SIGNED_OUT
    response: Response = RedirectResponse(SIGN_IN_PATH, status_code=303)
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response
