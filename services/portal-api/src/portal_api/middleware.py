"""Per-request log context: a trace id from `traceparent` (or a new one) on every log line."""

from __future__ import annotations

import structlog
from mport_shared.tracing import current_traceparent, new_traceparent, trace_id_of
from starlette.types import ASGIApp, Receive, Scope, Send


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        incoming = headers.get(b"traceparent", b"").decode(errors="ignore")
        traceparent = incoming if trace_id_of(incoming) else new_traceparent()
        token = current_traceparent.set(traceparent)
        structlog.contextvars.bind_contextvars(trace_id=trace_id_of(traceparent))
        try:
            await self.app(scope, receive, send)
        finally:
            current_traceparent.reset(token)
            structlog.contextvars.unbind_contextvars("trace_id")
