"""Sign-in and sign-out. In local mode a development sign-in stands in for the identity provider."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from sqlalchemy import func, select

from portal_api.deps import CSRF_COOKIE, SESSION_CSRF, SESSION_EMPLOYEE, Db, Settings, require_csrf
from portal_api.models import Employee
from portal_api.pages.rendering import SIGN_IN_PATH, safe_next
from portal_api.problems import Problem
from portal_api.ratelimit import limit_sign_in

router = APIRouter(prefix="/auth", tags=["auth"])


def start_session(request: Request, response: Response, employee: Employee, *, secure: bool) -> None:
    """Sign the employee in: a fresh session and CSRF token (no fixation of an earlier session)."""
    request.session.clear()
    csrf = secrets.token_urlsafe(32)
    request.session[SESSION_EMPLOYEE] = str(employee.id)
    request.session[SESSION_CSRF] = csrf
    # Readable by the page's script, which echoes it in the X-CSRF-Token header.
    response.set_cookie(CSRF_COOKIE, csrf, httponly=False, samesite="lax", secure=secure, path="/")


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
    start_session(request, response, employee, secure=not settings.is_local)
    return response


def _sent_by_browser(request: Request) -> bool:
    return "origin" in request.headers or "sec-fetch-site" in request.headers


@router.post("/logout", response_model=None, dependencies=[Depends(require_csrf)])
async def logout(request: Request) -> Response:
    request.session.clear()
    response: Response = RedirectResponse(SIGN_IN_PATH, status_code=303)
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response
