"""Rate limits on placing orders (per employee) and on signing in (per client address and route),
counted by the `limits` library; over a limit is a 429 with Retry-After (a problem, or for a
browser signing in a page)."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

from fastapi import FastAPI, Request
from fastapi.responses import Response
from limits import RateLimitItem
from limits.aio.storage import Storage
from limits.aio.strategies import FixedWindowRateLimiter
from limits.storage import storage_from_string
from mport_shared.logging import get_logger

from portal_api.deps import SignedInEmployee
from portal_api.pages.rendering import SIGN_IN_PATH, render
from portal_api.problems import PROBLEM_TYPES, RATE_LIMITED, Problem, problem_response
from portal_api.settings import PortalSettings, parse_rate_limit

log = get_logger(__name__)


class TooManyRequests(Problem):
    """A 429 problem (rate-limited, unless `code` names another) with its Retry-After (whole
    seconds, at least 1)."""

    def __init__(self, detail: str, *, retry_after_s: int, code: str = RATE_LIMITED) -> None:
        kind = PROBLEM_TYPES[code]
        super().__init__(
            kind.status,
            detail,
            title=kind.title,
            type_=kind.uri,
            code=code,
            retry_after_s=max(1, retry_after_s),
        )
        self.retry_after_s = max(1, retry_after_s)


class RateLimits:
    """The limits in force and their counts.

    A fixed window per key, starting at its first request: one counter per key, and an exact
    Retry-After (the window's end). Its known cost: a client can spend one window's allowance at
    its end and the next one's at once after. The alternatives are worse here: the sliding-window
    counter's reset time is an estimate (a client told to come back could be refused again), and
    the moving window's in-memory storage keeps an entry per request and expires them through a
    thread hop per key."""

    def __init__(self, *, storage_uri: str, orders: str | None, sign_in: str | None) -> None:
        storage = storage_from_string(storage_uri)
        if not isinstance(storage, Storage):
            raise ValueError(f"RATE_LIMIT_STORAGE_URI {storage_uri!r} is not an async storage (async+…://)")
        self._limiter = FixedWindowRateLimiter(storage)
        self.orders: tuple[RateLimitItem, ...] = parse_rate_limit(orders) if orders else ()
        self.sign_in: tuple[RateLimitItem, ...] = parse_rate_limit(sign_in) if sign_in else ()

    @classmethod
    def of(cls, settings: PortalSettings) -> RateLimits:
        return cls(
            storage_uri=settings.rate_limit_storage_uri,
            orders=settings.order_limit,
            sign_in=settings.sign_in_limit,
        )

    async def hit(self, items: Sequence[RateLimitItem], *key: str) -> tuple[RateLimitItem, int] | None:
        """Count one request against each limit; None if all allow it, else the first that refused
        it and the seconds until it allows one more (the end of its window)."""
        try:
            for item in items:
                if not await self._limiter.hit(item, *key):
                    stats = await self._limiter.get_window_stats(item, *key)
                    return item, math.ceil(stats.reset_time - time.time())
        except Exception:
            # A shared storage that is away must not take ordering or sign-in down with it.
            log.warning("rate limit storage unavailable; request let through", exc_info=True)
        return None


def _limits(request: Request) -> RateLimits:
    limits: RateLimits = request.app.state.rate_limits
    return limits


async def limit_orders(request: Request, who: SignedInEmployee) -> None:
    """Placing orders, per employee. Who is signed in comes from the session, so this costs no
    query of its own."""
    limits = _limits(request)
    if not limits.orders:
        return
    refused = await limits.hit(limits.orders, "orders", str(who.employee_id))
    if refused is not None:
        item, retry_after_s = refused
        log.warning("order rate limit reached", employee_id=str(who.employee_id), limit=str(item))
        raise TooManyRequests(
            f"Too many orders: at most {_words(item)}. Try again in {max(1, retry_after_s)} s.",
            retry_after_s=retry_after_s,
        )


async def limit_sign_in(request: Request) -> None:
    """Signing in (the development sign-in, the work account's start and callback), per client
    address and route. The address is the one uvicorn sees, or, behind a proxy listed in
    FORWARDED_ALLOW_IPS, the one the proxy forwarded."""
    limits = _limits(request)
    if not limits.sign_in:
        return
    client = request.client.host if request.client else "unknown"
    refused = await limits.hit(limits.sign_in, "sign-in", request.url.path, client)
    if refused is not None:
        item, retry_after_s = refused
        log.warning("sign-in rate limit reached", client=client, path=request.url.path, limit=str(item))
        raise TooManyRequests(
            f"Too many sign-in attempts from your address: at most {_words(item)}. "
            f"Try again in {max(1, retry_after_s)} s.",
            retry_after_s=retry_after_s,
        )


def _words(item: RateLimitItem) -> str:
    """10 per 1 minute -> "10 per minute"; 60 per 2 hour -> "60 per 2 hours"."""
    unit = item.GRANULARITY.name
    if item.multiples == 1:
        return f"{item.amount} per {unit}"
    return f"{item.amount} per {item.multiples} {unit}s"


def install_rate_limits(app: FastAPI, settings: PortalSettings) -> None:
    """The limits on app.state, and the 429 answer: a page for a browser signing in, otherwise a
    problem; both with Retry-After."""
    app.state.rate_limits = RateLimits.of(settings)

    @app.exception_handler(TooManyRequests)
    async def _too_many(request: Request, exc: TooManyRequests) -> Response:
        response: Response
        if request.url.path.startswith("/auth/") and "text/html" in request.headers.get("accept", ""):
            response = render(
                request,
                "error.html",
                {
                    "title_key": "rate_limited.title",
                    "message_key": "rate_limited.sign_in",
                    "message_values": {"seconds": str(exc.retry_after_s)},
                    "retry_href": SIGN_IN_PATH,
                },
                status_code=429,
            )
        else:
            response = problem_response(exc, request)
        response.headers["Retry-After"] = str(exc.retry_after_s)
        return response
