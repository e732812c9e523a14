"""Operational HTTP endpoints every service serves: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping

from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest, start_http_server
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mport_shared import metrics

ReadinessCheck = Callable[[], Awaitable[bool]]


async def check_readiness(checks: Mapping[str, ReadinessCheck], *, timeout_s: float = 2.0) -> dict[str, bool]:
    """Run each check (a failure or a timeout counts as not ready) and set `mport_ready{check}`."""
    results: dict[str, bool] = {}
    for name, check in checks.items():
        try:
            ok = await asyncio.wait_for(check(), timeout_s)
        except Exception:
            ok = False
        results[name] = bool(ok)
        metrics.READY.labels(name).set(1 if ok else 0)
    return results


def operations_router(
    checks: Mapping[str, ReadinessCheck], *, timeout_s: float = 2.0, metrics: bool = True
) -> APIRouter:
    """/healthz, /readyz and, unless `metrics` is False (served elsewhere, or not at all), /metrics."""
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", include_in_schema=False)
    async def readyz(only: str | None = None) -> JSONResponse:
        """All checks, or those named in `only` (comma-separated): the portal's traffic probe asks
        for the database alone, since it takes orders into its outbox while the broker is away."""
        chosen = checks
        if only is not None:
            names = {n.strip() for n in only.split(",") if n.strip()}
            if unknown := names - checks.keys():
                return JSONResponse(
                    {"status": "unavailable", "error": f"no such check: {', '.join(sorted(unknown))}"},
                    status_code=400,
                )
            chosen = {n: c for n, c in checks.items() if n in names}
        checked = await check_readiness(chosen, timeout_s=timeout_s)
        results = {name: "ok" if ok else "unavailable" for name, ok in checked.items()}
        ready = all(checked.values())
        return JSONResponse(
            {"status": "ok" if ready else "unavailable", "checks": results}, status_code=200 if ready else 503
        )

    if metrics:

        @router.get("/metrics", include_in_schema=False)
        async def metrics_endpoint() -> Response:
            return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


def start_metrics_server(*, host: str, port: int) -> Callable[[], None]:
    """/metrics on a port of its own (prometheus-client's server, in a thread, so a scrape never
    waits for the event loop), for a service whose own port is public; returns its stop."""
    server, thread = start_http_server(port, addr=host)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return stop


UNMATCHED_ROUTE = "unmatched"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def instrument(app: FastAPI) -> None:
    """Count and time every HTTP request of `app` by method, route template and status class.
    Added last, so it is the outermost middleware and sees every answer (a 413 or a 429 too)."""
    app.add_middleware(HttpMetricsMiddleware)


class HttpMetricsMiddleware:
    """`mport_http_requests_total` and `mport_http_request_duration_seconds`. The route is the
    template the router matched (`/api/v1/orders/{order_id}`), never the raw path, so ids and
    scanners' random paths do not grow the metrics: what matched nothing is `unmatched`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            # The router puts the route it matched in the scope (Starlette's Router, FastAPI's too).
            route = _route_template(scope.get("route"))
            method = scope.get("method", "")
            method = method if method in _METHODS else "other"
            metrics.HTTP_REQUESTS.labels(method, route, f"{status // 100}xx").inc()
            metrics.HTTP_SECONDS.labels(method, route).observe(time.perf_counter() - started)


def _route_template(route: object) -> str:
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return UNMATCHED_ROUTE
    if isinstance(route, Mount):
        return f"{path}/{{path}}"
    return path or "/"
