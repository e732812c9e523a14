"""TMF622 event subscriptions (hubs) and the delivery of ProductOrderStateChangeEvent to each."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from mport_shared.logging import get_logger

from carrier_simulator.orders import Behaviour
from carrier_simulator.tmf622 import (
    BASE_PATH,
    Hub,
    HubCreate,
    ProductOrder,
    ProductOrderStateChangeEvent,
    ProductOrderStateChangeEventPayload,
)

log = get_logger(__name__)

LISTENER_PATH = "/listener/productOrderStateChangeEvent"
_JSON = {"content-type": "application/json"}


def listener_url(callback: str) -> str:
    """Where a hub's notifications go: the listener path after the callback's, its query kept."""
    parts = urlsplit(callback)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + LISTENER_PATH, fragment=""))


def _without_query(url: str) -> str:
    # A callback's query often carries a token; log lines show where, never the query.
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query="", fragment=""))


@dataclass(frozen=True, slots=True)
class _Notification:
    """One state change, encoded once and shared by every hub that is to hear of it."""

    body: bytes
    order_id: str
    state: str
    created: float  # loop time, for the age limit


@dataclass(slots=True, eq=False)
class _OrderQueue:
    """What one hub has still to hear about one order, oldest first.

    At any time the queue is in exactly one place: the hub's ready line, in a worker's hands, or
    waiting for a retry timer; so one order never has two requests out, and its states go in
    order, while a refused notification holds back no other order.
    """

    order_id: str
    waiting: deque[_Notification] = field(default_factory=deque)
    sending: bool = False
    attempts: int = 0
    delay: float = 0.0
    problem: str = ""
    retry: asyncio.TimerHandle | None = None


@dataclass(slots=True, eq=False)
class _Hub:
    id: str
    callback: str
    query: str | None
    url: str
    queues: dict[str, _OrderQueue] = field(default_factory=dict)
    ready: deque[_OrderQueue] = field(default_factory=deque)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    workers: list[asyncio.Task[None]] = field(default_factory=list)
    removed: bool = False
    pending: int = 0
    delivered: int = 0
    dropped: int = 0
    expired: int = 0
    failed_attempts: int = 0

    def resource(self) -> Hub:
        return Hub(id=self.id, href=f"{BASE_PATH}/hub/{self.id}", callback=self.callback, query=self.query)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryPolicy:
    """How notifications are sent and retried."""

    timeout_s: float
    retry_initial_delay_s: float
    retry_max_delay_s: float
    max_age_s: float
    # Workers per hub: the most requests in flight to one listener.
    concurrency: int
    max_pending: int


class Notifier:
    """The registered hubs, each with its pending notifications and the workers that send them."""

    def __init__(
        self,
        *,
        behaviour: Behaviour,
        rng: random.Random,
        policy: DeliveryPolicy,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self._behaviour = behaviour
        self._rng = rng
        self._policy = policy
        self._on_change = on_change
        self._hubs: dict[str, _Hub] = {}
        self._client: aiohttp.ClientSession | None = None
        self._up = asyncio.Event()
        if not behaviour.down:
            self._up.set()

    async def start(self) -> None:
        """Open the HTTP client every delivery shares."""
        self._open_client()

    async def close(self) -> None:
        """Stop every delivery (pending ones are not kept) and close the client."""
        hubs = list(self._hubs.values())
        self._hubs.clear()
        for hub in hubs:
            self._stop(hub)
        await asyncio.gather(*(task for hub in hubs for task in hub.workers), return_exceptions=True)
        if self._client is not None:
            await self._client.close()
            self._client = None

    def set_down(self, down: bool) -> None:
        """While down nothing is sent; notifications wait and go out when it is back up."""
        if down:
            self._up.clear()
        else:
            self._up.set()

    # Hubs ---------------------------------------------------------------------------------

    def add_hub(self, request: HubCreate, *, hub_id: str | None = None) -> Hub:
        hub = _Hub(
            id=hub_id or str(uuid.uuid4()),
            callback=request.callback,
            query=request.query,
            url=listener_url(request.callback),
        )
        loop = asyncio.get_running_loop()
        hub.workers = [
            loop.create_task(self._work(hub), name=f"hub-{hub.id}-{number}")
            for number in range(self._policy.concurrency)
        ]
        self._hubs[hub.id] = hub
        log.info("carrier_simulator_hub_registered", hub_id=hub.id, listener=_without_query(hub.url))
        self._changed()
        return hub.resource()

    def remove_hub(self, hub_id: str) -> bool:
        """Forget the hub; its pending notifications are never sent."""
        hub = self._hubs.pop(hub_id, None)
        if hub is None:
            return False
        self._stop(hub)
        log.info("carrier_simulator_hub_removed", hub_id=hub_id, pending=hub.pending)
        self._changed()
        return True

    def hub_stats(self) -> list[dict[str, Any]]:
        return [
            hub.resource().model_dump(mode="json", exclude_none=True)
            | {
                "listener": _without_query(hub.url),  # the query may carry a token
                "delivered": hub.delivered,
                "dropped": hub.dropped,
                "expired": hub.expired,
                "pending": hub.pending,
                "failed_attempts": hub.failed_attempts,
            }
            for hub in self._hubs.values()
        ]

    def saved_hubs(self) -> list[dict[str, Any]]:
        return [{"id": hub.id, "callback": hub.callback, "query": hub.query} for hub in self._hubs.values()]

    def restore(self, records: Iterable[Mapping[str, Any]]) -> int:
        for record in records:
            request = HubCreate(callback=record["callback"], query=record.get("query"))
            self.add_hub(request, hub_id=str(record["id"]))
        return len(self._hubs)

    # Events -------------------------------------------------------------------------------

    @property
    def listening(self) -> bool:
        return bool(self._hubs)

    def order_changed(self, order: ProductOrder, *, at: datetime) -> None:
        """Queue a ProductOrderStateChangeEvent for every hub (bar those that drop it)."""
        event = ProductOrderStateChangeEvent(
            event_id=str(uuid.uuid4()),
            event_time=at,
            correlation_id=order.external_id[0].id if order.external_id else None,
            event=ProductOrderStateChangeEventPayload(product_order=order),
        )
        notification = _Notification(
            body=event.model_dump_json(exclude_none=True).encode(),
            order_id=order.id,
            state=order.state.value,
            created=asyncio.get_running_loop().time(),
        )
        drop_rate = self._behaviour.notification_drop_rate
        for hub in self._hubs.values():
            if drop_rate and self._rng.random() < drop_rate:
                hub.dropped += 1
                continue
            if hub.pending >= self._policy.max_pending:
                self._push_out_oldest(hub)
            queue = hub.queues.get(order.id)
            if queue is None:
                queue = hub.queues[order.id] = _OrderQueue(order.id)
                self._make_ready(hub, queue)
            # Otherwise the queue is already ready, being sent or waiting to retry: this one
            # goes after what it holds.
            queue.waiting.append(notification)
            hub.pending += 1

    def _push_out_oldest(self, hub: _Hub) -> None:
        for queue in hub.queues.values():  # oldest order first
            # What a worker is sending stays; anything behind it may go.
            if len(queue.waiting) > int(queue.sending):
                oldest = queue.waiting[int(queue.sending)]
                del queue.waiting[int(queue.sending)]
                break
        else:
            return
        hub.pending -= 1
        hub.expired += 1
        log.warning(
            "carrier_simulator_notification_dropped",
            why="too many pending for this hub",
            hub_id=hub.id,
            order_id=oldest.order_id,
            state=oldest.state,
            max_pending=self._policy.max_pending,
        )

    # Delivery -----------------------------------------------------------------------------

    def _make_ready(self, hub: _Hub, queue: _OrderQueue) -> None:
        queue.retry = None
        if hub.removed:
            return
        hub.ready.append(queue)
        hub.wakeup.set()

    def _stop(self, hub: _Hub) -> None:
        hub.removed = True
        for queue in hub.queues.values():
            if queue.retry is not None:
                queue.retry.cancel()
        for task in hub.workers:
            task.cancel()

    async def _work(self, hub: _Hub) -> None:
        while True:
            while not hub.ready:
                hub.wakeup.clear()
                await hub.wakeup.wait()
            if not self._up.is_set():
                await self._up.wait()
                continue
            queue = hub.ready.popleft()
            if not queue.waiting:  # emptied while it waited (a full hub pushed it out)
                if hub.queues.get(queue.order_id) is queue:
                    del hub.queues[queue.order_id]
                continue
            queue.sending = True
            try:
                delivered = await self._deliver(hub, queue)
            finally:
                queue.sending = False
            if delivered or not queue.waiting:
                self._next(hub, queue)
            else:
                self._retry_later(hub, queue)

    async def _deliver(self, hub: _Hub, queue: _OrderQueue) -> bool:
        """Try the queue's oldest notification once; True when it is done with (sent or too old)."""
        notification = queue.waiting[0]
        age = asyncio.get_running_loop().time() - notification.created
        if age >= self._policy.max_age_s:
            queue.waiting.popleft()
            hub.pending -= 1
            hub.expired += 1
            log.warning(
                "carrier_simulator_notification_dropped",
                why="not delivered within notification_max_age_s",
                hub_id=hub.id,
                listener=_without_query(hub.url),
                order_id=notification.order_id,
                state=notification.state,
                attempts=queue.attempts,
                last_problem=queue.problem,
            )
            return True
        queue.attempts += 1
        try:
            async with self._open_client().post(hub.url, data=notification.body, headers=_JSON) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            queue.problem = f"{type(exc).__name__}: {exc}"
        else:
            if 200 <= status < 300:
                # Pushed out while in flight is impossible (`sending`), so the head is still it.
                queue.waiting.popleft()
                hub.pending -= 1
                hub.delivered += 1
                return True
            queue.problem = f"HTTP {status}"
        hub.failed_attempts += 1
        log.debug(
            "carrier_simulator_notification_failed",
            hub_id=hub.id,
            order_id=notification.order_id,
            state=notification.state,
            attempts=queue.attempts,
            problem=queue.problem,
        )
        return False

    def _next(self, hub: _Hub, queue: _OrderQueue) -> None:
        queue.attempts, queue.delay, queue.problem = 0, 0.0, ""
        if queue.waiting:
            self._make_ready(hub, queue)
        elif hub.queues.get(queue.order_id) is queue:
            del hub.queues[queue.order_id]

    def _retry_later(self, hub: _Hub, queue: _OrderQueue) -> None:
        policy = self._policy
        queue.delay = min(queue.delay * 2 or policy.retry_initial_delay_s, policy.retry_max_delay_s)
        # Not past the oldest one's age limit: it is then dropped on time rather than late.
        age = asyncio.get_running_loop().time() - queue.waiting[0].created
        pause = max(min(queue.delay, policy.max_age_s - age), 0.0)
        queue.retry = asyncio.get_running_loop().call_later(pause, self._make_ready, hub, queue)

    def _open_client(self) -> aiohttp.ClientSession:
        # Normally opened by the app's lifespan; opened here too for an app driven without one
        # (httpx.ASGITransport runs no lifespan). aiohttp, not httpx: under the bench load a
        # notification cost ~1.2 ms of CPU through httpx and a fifth of that through aiohttp.
        # Listeners are local services, so no proxy from the environment (trust_env off).
        if self._client is None:
            self._client = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._policy.timeout_s),
                connector=aiohttp.TCPConnector(limit=self._policy.concurrency * 4),
            )
        return self._client

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()
