"""The services' side of `mport-ops outbox` and `mport-ops stuck`: small JSON endpoints under
/ops, each answering from the service's own tables only, behind the bearer token OPS_API_TOKEN.

Without OPS_API_TOKEN the routes are not there at all (404): the portal's main port is public.
A missing or malformed Authorization header is 401, a wrong token 403 (problem details)."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import SecretStr
from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://mport.no/problems/"
OPS_PREFIX = "/ops"
MAX_STUCK = 1000

# older_than_s, limit -> {"orders": [...], "total": n}
StuckOrders = Callable[[float, int], Awaitable[dict[str, Any]]]


def _problem(status: int, slug: str, title: str, detail: str) -> JSONResponse:
    return JSONResponse(
        {"type": PROBLEM_BASE + slug, "title": title, "status": status, "detail": detail},
        status_code=status,
        media_type=PROBLEM_JSON,
        headers={"WWW-Authenticate": "Bearer"} if status == 401 else None,
    )


def refused(request: Request, token: SecretStr) -> JSONResponse | None:
    """None when the request carries the ops token, else the problem to answer with."""
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return _problem(401, "ops-api-unauthorized", "Not authorized",
                        "The ops endpoints need the bearer token OPS_API_TOKEN.")  # fmt: skip
    if not hmac.compare_digest(given.strip().encode(), token.get_secret_value().encode()):
        return _problem(403, "ops-api-forbidden", "Forbidden", "That is not this service's OPS_API_TOKEN.")
    return None


async def outbox_backlog(sessions: async_sessionmaker[AsyncSession], outbox: Table) -> dict[str, Any]:
    """How many outbox rows wait to be published, and the oldest one's age: one cheap query."""
    async with sessions() as session:
        count, oldest = (
            await session.execute(
                select(func.count(), func.min(outbox.c.created_at)).where(outbox.c.sent_at.is_(None))
            )
        ).one()
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)  # SQLite hands back naive datetimes; we store UTC
    age = max((datetime.now(UTC) - oldest).total_seconds(), 0.0) if oldest else 0.0
    return {
        "backlog": int(count),
        "oldest_unsent_at": oldest.isoformat() if oldest else None,
        "oldest_age_s": round(age, 3),
    }


def ops_router(
    *,
    service: str,
    token: SecretStr | None,
    sessions: async_sessionmaker[AsyncSession],
    outbox: Table,
    stuck: StuckOrders | None = None,
) -> APIRouter:
    """GET /ops/outbox on every service; GET /ops/stuck-orders where `stuck` is given."""
    router = APIRouter(prefix=OPS_PREFIX, tags=["operations"], include_in_schema=False)
    if token is None or not token.get_secret_value():
        return router  # disabled: no routes, so 404

    @router.get("/outbox", response_model=None)
    async def outbox_endpoint(request: Request) -> JSONResponse | dict[str, Any]:
        if (problem := refused(request, token)) is not None:
            return problem
        return {"service": service, **await outbox_backlog(sessions, outbox)}

    if stuck is not None:

        @router.get("/stuck-orders", response_model=None)
        async def stuck_endpoint(
            request: Request,
            older_than_s: Annotated[float, Query(ge=0, le=365 * 86_400)] = 900.0,
            limit: Annotated[int, Query(ge=1, le=MAX_STUCK)] = 100,
        ) -> JSONResponse | dict[str, Any]:
            if (problem := refused(request, token)) is not None:
                return problem
            found = await stuck(older_than_s, limit)
            return {"service": service, "older_than_s": older_than_s, **found}

    return router
