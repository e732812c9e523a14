"""Operational HTTP endpoints every service serves: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest, start_http_server

ReadinessCheck = Callable[[], Awaitable[bool]]


def operations_router(
    checks: Mapping[str, ReadinessCheck], *, timeout_s: float = 2.0, metrics: bool = True
) -> APIRouter:
    """/healthz, /readyz and, unless `metrics` is False (served elsewhere, or not at all), /metrics."""
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        results: dict[str, str] = {}
        for name, check in checks.items():
            try:
                ok = await asyncio.wait_for(check(), timeout_s)
            except Exception:
                ok = False
            results[name] = "ok" if ok else "unavailable"
        ready = all(v == "ok" for v in results.values())
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
