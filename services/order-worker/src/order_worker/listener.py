"""TMF622 notifications: the listener endpoint the carrier posts state changes to, the queue that
confirms them in the background, and the hub registration that asks the carrier to post them."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

from mport_shared.logging import get_logger
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from order_worker import metrics
from order_worker.adapters.carrier import Carrier, CarrierError, StateChangeNotice, parse_state_change
from order_worker.models import CarrierListener

log = get_logger(__name__)

LISTENER_PATH = "/listener/productOrderStateChangeEvent"
MAX_NOTIFICATION_BYTES = 256 * 1024


class NoticeQueue:
    """Notices waiting to be confirmed, at most one per carrier order (a newer one replaces one
    not yet started), handled `concurrency` at a time.

    The listener answers the carrier at once and leaves the confirming to this queue, so a slow
    carrier read never slows the carrier's deliveries. A notice lost with the process is no loss:
    the order's next check finds the same state."""

    def __init__(
        self,
        handle: Callable[[StateChangeNotice], Awaitable[None]],
        *,
        concurrency: int = 16,
        max_pending: int = 100_000,
    ) -> None:
        self._handle = handle
        self._limit = asyncio.Semaphore(concurrency)
        self._max_pending = max_pending
        self._pending: dict[str, StateChangeNotice] = {}
        self._active: set[str] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._handling: set[asyncio.Task[None]] = set()

    def put(self, notice: StateChangeNotice) -> None:
        if len(self._pending) >= self._max_pending and notice.carrier_order_id not in self._pending:
            log.warning("too many notifications waiting; dropping one (its order's check will see it)")
            return
        self._pending[notice.carrier_order_id] = notice
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="carrier-notices")

    async def stop(self, *, grace_s: float) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._handling:
            _, pending = await asyncio.wait(self._handling, timeout=grace_s)
            for task in pending:
                task.cancel()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            for carrier_order_id in [key for key in self._pending if key not in self._active]:
                await self._limit.acquire()
                notice = self._pending.pop(carrier_order_id)
                self._active.add(carrier_order_id)
                task = asyncio.create_task(self._one(notice))
                self._handling.add(task)
                task.add_done_callback(self._handling.discard)

    async def _one(self, notice: StateChangeNotice) -> None:
        try:
            await self._handle(notice)
        except Exception:
            log.warning(
                "could not act on a notification; the order's next check will",
                carrier_order_id=notice.carrier_order_id,
                exc_info=True,
            )
        finally:
            self._active.discard(notice.carrier_order_id)
            self._limit.release()
            if notice.carrier_order_id in self._pending:
                self._wake.set()  # a newer notice came in while this one was handled


def listener_endpoint(queue: NoticeQueue, *, secret: str) -> Callable[[Request], Awaitable[Response]]:
    """`POST /listener/productOrderStateChangeEvent?token=…`: 204 once the notice is queued.

    A plain Starlette endpoint: the carrier posts one per state change of every order, so it
    skips FastAPI's validation layer and reads the body itself."""
    expected = secret.encode()

    async def productOrderStateChangeEvent(request: Request) -> Response:  # noqa: N802 - TMF's name
        token = request.query_params.get("token", "").encode()
        if not hmac.compare_digest(token, expected):
            metrics.NOTIFICATIONS.labels("refused").inc()
            log.warning("notification with a wrong or missing token refused", client=_client(request))
            return _error(401, "Unauthorized", "This listener needs the token it registered with.")
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_NOTIFICATION_BYTES):
            return _error(413, "Payload too large", f"At most {MAX_NOTIFICATION_BYTES} bytes.")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_NOTIFICATION_BYTES:
                return _error(413, "Payload too large", f"At most {MAX_NOTIFICATION_BYTES} bytes.")
        try:
            notice = parse_state_change(bytes(body))
        except ValueError as exc:
            metrics.NOTIFICATIONS.labels("refused").inc()
            log.warning("unreadable notification refused", reason=str(exc))
            return _error(400, "Invalid notification", str(exc))
        queue.put(notice)
        return Response(status_code=204)

    return productOrderStateChangeEvent


def _error(status: int, reason: str, message: str) -> JSONResponse:
    # The body of every TMF error answer.
    return JSONResponse(
        {"code": str(status), "reason": reason, "message": message, "status": str(status), "@type": "Error"},
        status_code=status,
    )


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


def callback_url(listener_url: str, secret: str) -> str:
    """The callback given to the carrier: our listener's base URL with the token as its query;
    the carrier appends `/listener/productOrderStateChangeEvent` to the path."""
    return f"{listener_url.rstrip('/')}/?{urlencode({'token': secret})}"


class ListenerRegistration:
    """Registers this worker's listener with the carrier (`POST /hub`), retrying while the carrier
    is away, and removes it on shutdown (`DELETE /hub/{id}`).

    A hub left behind by a killed worker at the same address is taken over when its callback is
    this worker's too (a configured token): the carrier still holds the notifications it could
    not deliver while no worker listened. A hub with another token is removed, so the carrier
    stops posting to a token nobody accepts; the reconciler finds what its notifications said."""

    def __init__(
        self,
        *,
        carrier: Carrier,
        sessions: async_sessionmaker[AsyncSession],
        listener_url: str,
        secret: str,
        retry_max_s: float = 60.0,
    ) -> None:
        self._carrier = carrier
        self._sessions = sessions
        self._listener_url = listener_url
        self._callback = callback_url(listener_url, secret)
        self._digest = hashlib.sha256(self._callback.encode()).hexdigest()
        self._retry_max_s = retry_max_s
        self.hub_id: str | None = None
        self.registered = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._register(), name="carrier-hub")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.hub_id is None:
            return
        try:
            async with metrics.timed_call("unregister_listener"):
                await asyncio.wait_for(self._carrier.unregister_listener(self.hub_id), 5)
        except (CarrierError, TimeoutError) as exc:
            # Left for the next worker at this address to remove.
            log.warning("could not remove the carrier listener", hub_id=self.hub_id, reason=str(exc))
            return
        async with self._sessions.begin() as session:
            await session.execute(delete(CarrierListener).where(CarrierListener.hub_id == self.hub_id))
        log.info("carrier listener removed", hub_id=self.hub_id)

    async def _register(self) -> None:
        delay = 1.0
        while True:
            try:
                kept = await self._take_over_or_remove()
                if kept is not None:
                    self.hub_id = kept
                    self.registered.set()
                    log.info("carrier listener taken over from the last worker here", hub_id=kept)
                    return
                async with metrics.timed_call("register_listener"):
                    hub_id = await self._carrier.register_listener(self._callback)
            except CarrierError as exc:
                log.warning(
                    "could not register with the carrier for notifications; retrying",
                    retry_in_s=delay,
                    reason=str(exc),
                )
                await asyncio.sleep(delay)
                delay = min(self._retry_max_s, delay * 2)
                continue
            async with self._sessions.begin() as session:
                session.add(
                    CarrierListener(
                        hub_id=hub_id, listener_url=self._listener_url, callback_digest=self._digest
                    )
                )
            self.hub_id = hub_id
            self.registered.set()
            log.info("carrier listener registered", hub_id=hub_id, listener_url=self._listener_url)
            return

    async def _take_over_or_remove(self) -> str | None:
        async with self._sessions() as session:
            left = (
                await session.execute(
                    select(CarrierListener.hub_id, CarrierListener.callback_digest).where(
                        CarrierListener.listener_url == self._listener_url
                    )
                )
            ).all()
        kept = next((hub_id for hub_id, digest in left if hmac.compare_digest(digest, self._digest)), None)
        for hub_id, _ in left:
            if hub_id == kept:
                continue
            await self._carrier.unregister_listener(hub_id)
            async with self._sessions.begin() as session:
                await session.execute(delete(CarrierListener).where(CarrierListener.hub_id == hub_id))
            log.info("removed a carrier listener left behind at this address", hub_id=hub_id)
        return kept
