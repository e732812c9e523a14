"""Rendering the portal's HTML: templates, language choice, CSRF token, security headers, sign-in gate."""

from __future__ import annotations

import hashlib
import secrets
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from starlette.requests import Request
from starlette.responses import Response

from portal_api.deps import SESSION_CSRF
from portal_api.i18n import LANG_COOKIE, Translator, pick_language
from portal_api.models import Employee
from portal_api.settings import PortalSettings

PACKAGE_DIR = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = PACKAGE_DIR / "templates"
STATIC_DIR = PACKAGE_DIR / "static"
SIGN_IN_PATH = "/logg-inn"
NEXT_PARAM = "neste"

templates = Jinja2Templates(directory=TEMPLATES_DIR)

# Only our own files: no inline script (the JSON data blocks are not executed), no third parties.
_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": _CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@cache
def static_version() -> str:
    """A fingerprint of the static files, so a browser never runs a new page with an old script."""
    digest = hashlib.sha256()
    for path in sorted(STATIC_DIR.rglob("*")):
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def csrf_token(request: Request) -> str:
    """The session's CSRF token, made on first need (the sign-in forms need one before sign-in)."""
    token = request.session.get(SESSION_CSRF)
    if not token:
        token = secrets.token_urlsafe(32)
        request.session[SESSION_CSRF] = token
    return str(token)


def safe_next(path: str | None, default: str = "/abonnement") -> str:
    """A same-site path to continue to after sign-in; anything else (an open redirect) is replaced."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return default
    if any(ord(ch) < 0x20 for ch in path):
        return default
    return path


def sign_in_redirect(request: Request) -> RedirectResponse:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if here == "/":
        # The front door: after signing in, the employee lands where self-service is (Abonnement,
        # the seed's step 2), not on the front page again.
        return RedirectResponse(SIGN_IN_PATH, status_code=303)
    return RedirectResponse(f"{SIGN_IN_PATH}?{NEXT_PARAM}={quote(here, safe='/')}", status_code=303)


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    employee: Employee | None = None,
    status_code: int = 200,
) -> Response:
    """A page in the visitor's language, with the CSRF token its forms and script need."""
    lang, chosen_now = pick_language(request)
    settings: PortalSettings = request.app.state.settings
    t = Translator(lang)
    response: HTMLResponse = templates.TemplateResponse(
        request,
        template,
        {
            "t": t,
            "lang": lang,
            "employee": employee,
            "csrf_token": csrf_token(request),
            "static_version": static_version(),
            "current_path": request.url.path,
            "js_strings": t.js_strings(),
            "is_local": settings.is_local,
            **(context or {}),
        },
        status_code=status_code,
        headers=PAGE_HEADERS,
    )
    if chosen_now:
        response.set_cookie(
            LANG_COOKIE, lang, max_age=365 * 24 * 3600, samesite="lax", secure=not settings.is_local
        )
    return response
