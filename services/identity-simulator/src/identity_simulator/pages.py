"""The provider's HTML pages (Norwegian): the sign-in page and short messages."""

from __future__ import annotations

from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

_templates = Environment(
    loader=PackageLoader("identity_simulator", "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)

# The sign-in page must not be framed by another site (clickjacking) nor kept by a cache. No
# form-action: browsers apply it to the redirect after the form too, which goes to the client.
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def render(template: str, context: dict[str, Any], *, status_code: int = 200) -> HTMLResponse:
    html = _templates.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status_code, headers=_PAGE_HEADERS)


def message_page(
    heading: str, message: str, *, hint: str = "", status_code: int = 200, is_error: bool = False
) -> HTMLResponse:
    return render(
        "message.html",
        {"heading": heading, "message": message, "hint": hint, "is_error": is_error},
        status_code=status_code,
    )


def error_page(message: str, *, status_code: int = 400) -> HTMLResponse:
    return message_page(
        "Innloggingen kan ikke fortsette",
        message,
        hint="Gå tilbake til tjenesten du kom fra og prøv på nytt.",
        status_code=status_code,
        is_error=True,
    )
