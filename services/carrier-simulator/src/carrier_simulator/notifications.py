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

import httpx
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
class _Lane:
    """A queue with one worker: what goes in one lane is delivered in the order it came."""

    waiting: deque[_Notification] = field(default_factory=deque)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    busy: bool = False
    task: asyncio.Task[None] | None = None


@dataclass(slots=True, eq=False)
class _Hub:
    id: str
    callback: str
    query: str | None
    url: httpx.URL
    lanes: list[_Lane]
    waiting: int = 0
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
    # Lanes per hub: the most requests in flight to one listener.
    concurrency: int
    max_pending: int


class Notifier:
    """The registered hubs, each with its lanes of pending notifications and their workers."""

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
        self._client: httpx.AsyncClient | None = None
        self._up = asyncio.Event()
        if not behaviour.down:
            self._up.set()

    async def start(self) -> None:
        """Open the HTTP client every delivery shares."""
        self._open_client()

    async def close(self) -> None:
        """Stop every delivery (pending ones are not kept) and close the client."""
        tasks = [lane.task for hub in self._hubs.values() for lane in hub.lanes if lane.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._hubs.clear()
        if self._client is not None:
            await self._client.aclose()
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
            url=httpx.URL(listener_url(request.callback)),
            lanes=[_Lane() for _ in range(self._policy.concurrency)],
        )
        loop = asyncio.get_running_loop()
        for number, lane in enumerate(hub.lanes):
            lane.task = loop.create_task(self._run_lane(hub, lane), name=f"hub-{hub.id}-lane-{number}")
        self._hubs[hub.id] = hub
        log.info("carrier_simulator_hub_registered", hub_id=hub.id, listener=_without_query(str(hub.url)))
        self._changed()
        return hub.resource()

    def remove_hub(self, hub_id: str) -> bool:
        """Forget the hub; its pending notifications are never sent."""
        hub = self._hubs.pop(hub_id, None)
        if hub is None:
            return False
        for lane in hub.lanes:
            if lane.task is not None:
                lane.task.cancel()
        log.info("carrier_simulator_hub_removed", hub_id=hub_id, pending=hub.waiting)
        self._changed()
        return True

    def hub_stats(self) -> list[dict[str, Any]]:
        return [
            hub.resource().model_dump(mode="json", exclude_none=True)
            | {
                "listener": str(hub.url),
                "delivered": hub.delivered,
                "dropped": hub.dropped,
                "expired": hub.expired,
                "pending": hub.waiting + sum(lane.busy for lane in hub.lanes),
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
        # The same lane for every change of one order, so its states arrive in order.
        lane_number = hash(order.id) % self._policy.concurrency
        drop_rate = self._behaviour.notification_drop_rate
        for hub in self._hubs.values():
            if drop_rate and self._rng.random() < drop_rate:
                hub.dropped += 1
                continue
            if hub.waiting >= self._policy.max_pending:
                self._push_out_oldest(hub)
            lane = hub.lanes[lane_number]
            lane.waiting.append(notification)
            hub.waiting += 1
            lane.wakeup.set()

    def _push_out_oldest(self, hub: _Hub) -> None:
        fullest = max(hub.lanes, key=lambda lane: len(lane.waiting))
        oldest = fullest.waiting.popleft()
        hub.waiting -= 1
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

    async def _run_lane(self, hub: _Hub, lane: _Lane) -> None:
        while True:
            while not lane.waiting:
                lane.wakeup.clear()
                await lane.wakeup.wait()
            notification = lane.waiting.popleft()
            hub.waiting -= 1
            lane.busy = True
            try:
                await self._deliver(hub, notification)
            finally:
                lane.busy = False

    async def _deliver(self, hub: _Hub, notification: _Notification) -> None:
        """Post until a 2xx answer, with growing pauses, until the notification is too old."""
        loop = asyncio.get_running_loop()
        policy = self._policy
        delay = min(policy.retry_initial_delay_s, policy.retry_max_delay_s)
        attempts, problem = 0, ""
        while True:
            if not self._up.is_set():
                await self._up.wait()
            age = loop.time() - notification.created
            if age >= policy.max_age_s:
                hub.expired += 1
                log.warning(
                    "carrier_simulator_notification_dropped",
                    why="not delivered within notification_max_age_s",
                    hub_id=hub.id,
                    listener=_without_query(str(hub.url)),
                    order_id=notification.order_id,
                    state=notification.state,
                    attempts=attempts,
                    last_problem=problem,
                )
                return
            attempts += 1
            try:
                response = await self._open_client().post(hub.url, content=notification.body, headers=_JSON)
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if response.is_success:
                    hub.delivered += 1
                    return
                problem = f"HTTP {response.status_code}"
            hub.failed_attempts += 1
            log.debug(
                "carrier_simulator_notification_failed",
                hub_id=hub.id,
                order_id=notification.order_id,
                state=notification.state,
                attempts=attempts,
                problem=problem,
            )
            await asyncio.sleep(min(delay, policy.max_age_s - age))
            delay = min(delay * 2, policy.retry_max_delay_s)

    def _open_client(self) -> httpx.AsyncClient:
        # Normally opened by the app's lifespan; opened here too for an app driven without one
        # (httpx.ASGITransport runs no lifespan).
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self._policy.timeout_s,
                # Listeners are local services; a developer's HTTP(S)_PROXY must not reroute them.
                trust_env=False,
            )
        return self._client

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()
