"""Request bodies over a size limit get 413 before they are read in full (a pure ASGI middleware)."""

from __future__ import annotations

from mport_shared.logging import get_logger
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from portal_api.problems import BODY_TOO_LARGE, Problem, problem_response

log = get_logger(__name__)

_FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


class _BodyTooLarge(Exception):
    """Raised from `receive` into the app, so that whatever is reading the body stops reading."""


class BodyLimitMiddleware:
    """Refuses a body over its limit: forms (urlencoded, multipart) `form_limit` bytes, any other
    body `json_limit`. A declared Content-Length over the limit is refused without calling the app;
    a body without one is counted as it streams in and refused once it passes the limit.

    Install it outermost, so the limit holds before sessions, CSRF checks and sign-in, and
    for anonymous requests too."""

    def __init__(self, app: ASGIApp, *, json_limit: int, form_limit: int) -> None:
        self.app = app
        self.json_limit = json_limit
        self.form_limit = form_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_form, declared = _content_type_and_length(scope)
        limit = self.form_limit if is_form else self.json_limit
        if declared is not None and declared > limit:
            await self._refuse(scope, receive, send, limit=limit, is_form=is_form)
            return

        received = 0
        too_large = False
        response_started = False

        async def counted_receive() -> Message:
            nonlocal received, too_large
            if too_large:
                raise _BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    too_large = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if too_large and not response_started:
                return  # the app's answer to a body it could not read (e.g. FastAPI's 400): ours goes
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            # Whatever the app made of _BodyTooLarge (it may wrap it): once the body was too large
            # and nothing went out yet, the answer is the 413.
            if not (too_large and not response_started):
                raise
        if too_large and not response_started:
            await self._refuse(scope, receive, send, limit=limit, is_form=is_form)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, *, limit: int, is_form: bool) -> None:
        what = "a form" if is_form else "this kind of request"
        log.warning("request body too large", path=scope.get("path"), limit_bytes=limit)
        response = problem_response(
            Problem.of(
                BODY_TOO_LARGE,
                f"The request body is too large: {what} may have at most {_size(limit)}.",
                max_body_bytes=limit,
            ),
            Request(scope),
        )
        # The rest of the body is never read: the connection cannot be reused for another request.
        response.headers["connection"] = "close"
        await response(scope, receive, send)


def _content_type_and_length(scope: Scope) -> tuple[bool, int | None]:
    """Whether the body is a form, and the largest Content-Length declared (None if none is valid)."""
    is_form = False
    declared: int | None = None
    for name, value in scope.get("headers") or []:
        if name == b"content-type":
            media_type = value.split(b";", 1)[0].strip().lower().decode("latin-1")
            is_form = media_type in _FORM_TYPES
        elif name == b"content-length" and value.strip().isdigit():
            declared = max(declared or 0, int(value))
    return is_form, declared


def _size(limit: int) -> str:
    for unit, size in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if limit >= size and limit % size == 0:
            return f"{limit // size} {unit} ({limit} bytes)"
    return f"{limit} bytes"
