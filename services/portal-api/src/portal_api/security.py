"""Response headers every answer gets: no caching of what carries personal data, and HSTS in production."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Fingerprinted (?v=…) and public: the only answers a browser or a proxy may keep.
_CACHEABLE_PREFIX = "/static/"


class SecurityHeadersMiddleware:
    """Adds `Cache-Control: no-store` (unless the answer sets its own), `X-Content-Type-Options:
    nosniff`, and, when `hsts` is given, `Strict-Transport-Security`.

    no-store goes on every answer but the static files: the API's JSON (who the employee is, their
    number, orders, deductions), the pages, redirects that set cookies and errors all carry personal
    data or session state, and a shared computer's browser cache or a proxy must not keep them.
    A pure ASGI middleware, so the cost is a few header appends per answer."""

    def __init__(self, app: ASGIApp, *, hsts: str | None) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cacheable = scope["path"].startswith(_CACHEABLE_PREFIX)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                headers = MutableHeaders(scope=message)
                if not cacheable and "cache-control" not in headers:
                    headers.append("Cache-Control", "no-store")
                if "x-content-type-options" not in headers:
                    headers.append("X-Content-Type-Options", "nosniff")
                if self.hsts is not None:
                    headers.append("Strict-Transport-Security", self.hsts)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def hsts_value(max_age_s: int) -> str | None:
    """The Strict-Transport-Security value for a max-age, or None for none (0)."""
    return f"max-age={max_age_s}; includeSubDomains" if max_age_s > 0 else None
