"""The carrier's order book: stores orders in memory, dedups by externalId, runs their life cycle."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from carrier_simulator.tmf622 import (
    BASE_PATH,
    ProductOrder,
    ProductOrderCreate,
    ProductOrderErrorMessage,
    ProductOrderItem,
    ProductOrderItemRef,
    ProductOrderItemState,
    ProductOrderState,
)

UNKNOWN_OFFERING_CODE = "UNKNOWN_PRODUCT_OFFERING"
SIMULATED_FAILURE_CODE = "SIMULATED_FAILURE"
SIMULATED_FAILURE_REASON = "Carrier rejected the order (simulated failure)"


@dataclass(slots=True)
class Behaviour:
    """How the carrier behaves right now; changed at run time through `/simulator/config`."""

    latency_ms: int
    failure_rate: float
    unavailable_rate: float
    latency_jitter_ms: int = 0
    notification_drop_rate: float = 0.0
    down: bool = False


class StateChangeListener(Protocol):
    """Told of every state change of every order, the order rendered as GET returns it."""

    @property
    def listening(self) -> bool:
        """False when nobody would hear of it: the order is then not rendered at all."""
        ...

    def order_changed(self, order: ProductOrder, *, at: datetime) -> None: ...


@dataclass(frozen=True, slots=True)
class _Failure:
    code: str
    reason: str
    message: str
    item_ids: tuple[str, ...]


@dataclass(slots=True, eq=False)
class _Order:
    id: str
    request: ProductOrderCreate
    created_at: datetime
    # Planned when the order arrives (None: no inProgress step, the order finishes at once).
    in_progress_at: datetime | None
    expected_completion: datetime
    # Decided when the order arrives, so a config change never alters an order in flight.
    outcome: tuple[_Failure, ...]
    state: ProductOrderState = ProductOrderState.ACKNOWLEDGED
    completed_at: datetime | None = None
    errors: list[ProductOrderErrorMessage] = field(default_factory=list)
    timers: list[asyncio.Handle] = field(default_factory=list)
    # This order as saved to the state file; dropped on every change, rebuilt when next saved.
    saved_json: str | None = None

    @property
    def finished(self) -> bool:
        return self.state in (ProductOrderState.COMPLETED, ProductOrderState.FAILED)


class OrderBook:
    """Every product order the carrier has accepted, and the timers that move them along."""

    def __init__(
        self,
        *,
        behaviour: Behaviour,
        known_offerings: Iterable[str],
        rng: random.Random,
        max_orders: int,
        listener: StateChangeListener | None = None,
        on_change: Callable[[], None] | None = None,
        notify_on_create: bool = False,
    ) -> None:
        self._behaviour = behaviour
        self._known_offerings = frozenset(known_offerings)
        self._rng = rng
        self._max_orders = max_orders
        self._listener = listener
        self._notify_on_create = notify_on_create
        self._on_change = on_change
        self._orders: dict[str, _Order] = {}
        self._by_external_id: dict[str, str] = {}
        # The check for an existing externalId and the insert must not interleave with another
        # request's; the lock keeps that true even if placing an order ever awaits something.
        self._lock = asyncio.Lock()

    async def place(self, request: ProductOrderCreate) -> tuple[ProductOrder, bool]:
        """Create the order, or return the one already made for its externalId (created=False)."""
        async with self._lock:
            existing = self._find_by_external_ids(request)
            if existing is not None:
                return self._render(existing), False
            order = self._create(request)
            if order.expected_completion <= order.created_at:
                # Zero latency: a carrier that provisions at once answers with the outcome. That
                # is no state change to tell (there was none before), unless creations are told.
                self._finish(order, tell=self._notify_on_create)
                return self._render(order), True
            # Rendered before any timer can run, so the answer shows the order as acknowledged;
            # the acknowledged notification, if any, carries the same rendering.
            rendered = self._render(order)
            if self._notify_on_create:
                self._changed(order, at=order.created_at, rendered=rendered)
            else:
                self._stored(order)
            return rendered, True

    def get(self, order_id: str) -> ProductOrder | None:
        order = self._orders.get(order_id)
        return None if order is None else self._render(order)

    def list_orders(
        self,
        *,
        external_id: str | None = None,
        state: ProductOrderState | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> tuple[list[ProductOrder], int]:
        """One page of orders, oldest first, and how many match in total."""
        matching: list[_Order] | None = None
        if external_id is not None:
            order_id = self._by_external_id.get(external_id)
            matching = [] if order_id is None else [self._orders[order_id]]
        if state is not None:
            source = self._orders.values() if matching is None else matching
            matching = [order for order in source if order.state is state]
        if matching is None:
            # Unfiltered: page through the dict itself instead of copying every order.
            total, candidates = len(self._orders), iter(self._orders.values())
        else:
            total, candidates = len(matching), iter(matching)
        stop = None if limit is None else offset + limit
        return [self._render(order) for order in itertools.islice(candidates, offset, stop)], total

    def saved_orders(self) -> list[str]:
        """Every order as JSON for the state file, oldest first; only changed ones are re-encoded."""
        saved = []
        for order in self._orders.values():
            if order.saved_json is None:
                order.saved_json = json.dumps(_to_record(order), separators=(",", ":"))
            saved.append(order.saved_json)
        return saved

    def restore(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Take back saved orders and re-arm their timers; those overdue finish at once."""
        for record in records:
            order = _from_record(record)
            self._orders[order.id] = order
            for external in order.request.external_id:
                self._by_external_id[external.id] = order.id
        self._forget_oldest()
        now = datetime.now(UTC)
        for order in self._orders.values():
            self._arm(order, now=now)
        return len(self._orders)

    def _find_by_external_ids(self, request: ProductOrderCreate) -> _Order | None:
        for external in request.external_id:
            order_id = self._by_external_id.get(external.id)
            if order_id is not None:
                return self._orders[order_id]
        return None

    def _create(self, request: ProductOrderCreate) -> _Order:
        now = datetime.now(UTC)
        latency_ms: float = self._behaviour.latency_ms
        if self._behaviour.latency_jitter_ms:
            latency_ms += self._rng.uniform(0, self._behaviour.latency_jitter_ms)
        latency = timedelta(milliseconds=latency_ms)
        order = _Order(
            id=str(uuid.uuid4()),
            request=request,
            created_at=now,
            in_progress_at=now + latency / 2 if latency else None,
            expected_completion=now + latency,
            outcome=self._decide_outcome(request),
        )
        self._orders[order.id] = order
        for external in request.external_id:
            self._by_external_id[external.id] = order.id
        self._forget_oldest()
        if latency:
            self._arm(order, now=now)
        return order

    def _decide_outcome(self, request: ProductOrderCreate) -> tuple[_Failure, ...]:
        unknown = tuple(
            _Failure(
                code=UNKNOWN_OFFERING_CODE,
                reason=f"Unknown product offering '{item.product_offering.id}'",
                message="The carrier's catalog has no product offering with this id.",
                item_ids=(item.id,),
            )
            for item in request.product_order_item
            if item.product_offering.id not in self._known_offerings
        )
        if unknown:
            return unknown
        if self._rng.random() < self._behaviour.failure_rate:
            return (
                _Failure(
                    code=SIMULATED_FAILURE_CODE,
                    reason=SIMULATED_FAILURE_REASON,
                    message=f"failure_rate is {self._behaviour.failure_rate}.",
                    item_ids=tuple(item.id for item in request.product_order_item),
                ),
            )
        return ()

    def _arm(self, order: _Order, *, now: datetime) -> None:
        """Set the timers that move the order on, from its planned (absolute) times."""
        if order.finished:
            return
        # Timers rather than a task per order: nothing polls, and nothing runs between steps.
        loop = asyncio.get_running_loop()
        to_finish = (order.expected_completion - now).total_seconds()
        if to_finish <= 0:
            # Zero latency, or its time passed while the simulator was stopped: done at once,
            # by one callback, so inProgress cannot overtake completed.
            order.timers = [loop.call_soon(self._catch_up, order)]
            return
        timers: list[asyncio.Handle] = []
        if order.in_progress_at is not None and order.state is ProductOrderState.ACKNOWLEDGED:
            to_start = (order.in_progress_at - now).total_seconds()
            # call_soon runs before any timer falls due, so the start still comes first.
            start = loop.call_later(to_start, self._start, order) if to_start > 0 else None
            timers.append(start or loop.call_soon(self._start, order))
        timers.append(loop.call_later(to_finish, self._finish, order))
        order.timers = timers

    def _catch_up(self, order: _Order) -> None:
        if order.in_progress_at is not None:
            self._start(order)
        self._finish(order)

    def _start(self, order: _Order) -> None:
        if order.state is ProductOrderState.ACKNOWLEDGED:
            order.state = ProductOrderState.IN_PROGRESS
            self._changed(order, at=datetime.now(UTC))

    def _finish(self, order: _Order, *, tell: bool = True) -> None:
        if order.finished:
            return
        now = datetime.now(UTC)
        order.timers = []
        if not order.outcome:
            order.state = ProductOrderState.COMPLETED
            order.completed_at = now
        else:
            order.state = ProductOrderState.FAILED
            order.errors = [
                ProductOrderErrorMessage(
                    code=failure.code,
                    reason=failure.reason,
                    message=failure.message,
                    timestamp=now,
                    product_order_item=[
                        ProductOrderItemRef(product_order_id=order.id, product_order_item_id=item_id)
                        for item_id in failure.item_ids
                    ],
                )
                for failure in order.outcome
            ]
        if tell:
            self._changed(order, at=now)
        else:
            self._stored(order)

    def _stored(self, order: _Order) -> None:
        order.saved_json = None
        if self._on_change is not None:
            self._on_change()

    def _changed(self, order: _Order, *, at: datetime, rendered: ProductOrder | None = None) -> None:
        self._stored(order)
        if self._listener is not None and self._listener.listening:
            self._listener.order_changed(rendered or self._render(order), at=at)

    def _forget_oldest(self) -> None:
        while len(self._orders) > self._max_orders:
            oldest_id = next(iter(self._orders))
            oldest = self._orders.pop(oldest_id)
            # A forgotten order moves no further: its timers would keep it in memory for as
            # long as its latency, without bound under a long benchmark with a slow carrier.
            for timer in oldest.timers:
                timer.cancel()
            for external in oldest.request.external_id:
                if self._by_external_id.get(external.id) == oldest_id:
                    del self._by_external_id[external.id]

    @staticmethod
    def _render(order: _Order) -> ProductOrder:
        request = order.request
        item_state = ProductOrderItemState(order.state.value)
        return ProductOrder(
            id=order.id,
            href=f"{BASE_PATH}/productOrder/{order.id}",
            state=order.state,
            creation_date=order.created_at,
            expected_completion_date=order.expected_completion,
            completion_date=order.completed_at,
            external_id=list(request.external_id),
            product_order_item=[
                ProductOrderItem(
                    id=item.id,
                    action=item.action,
                    quantity=item.quantity,
                    product_offering=item.product_offering,
                    product=item.product,
                    state=item_state,
                )
                for item in request.product_order_item
            ],
            product_order_error_message=list(order.errors) or None,
            description=request.description,
            category=request.category,
            priority=request.priority,
        )


def _to_record(order: _Order) -> dict[str, Any]:
    return {
        "id": order.id,
        "request": order.request.model_dump(mode="json", exclude_none=True),
        "createdAt": order.created_at.isoformat(),
        "inProgressAt": None if order.in_progress_at is None else order.in_progress_at.isoformat(),
        "expectedCompletion": order.expected_completion.isoformat(),
        "outcome": [
            {"code": f.code, "reason": f.reason, "message": f.message, "itemIds": list(f.item_ids)}
            for f in order.outcome
        ],
        "state": order.state.value,
        "completedAt": None if order.completed_at is None else order.completed_at.isoformat(),
        "errors": [error.model_dump(mode="json", exclude_none=True) for error in order.errors],
    }


def _from_record(record: Mapping[str, Any]) -> _Order:
    def moment(value: Any) -> datetime | None:
        return None if value is None else datetime.fromisoformat(value)

    created_at, expected = moment(record["createdAt"]), moment(record["expectedCompletion"])
    if created_at is None or expected is None:
        raise ValueError(f"order {record.get('id')!r} has no createdAt or expectedCompletion")
    return _Order(
        id=str(record["id"]),
        request=ProductOrderCreate.model_validate(record["request"]),
        created_at=created_at,
        in_progress_at=moment(record["inProgressAt"]),
        expected_completion=expected,
        outcome=tuple(
            _Failure(code=f["code"], reason=f["reason"], message=f["message"], item_ids=tuple(f["itemIds"]))
            for f in record["outcome"]
        ),
        state=ProductOrderState(record["state"]),
        completed_at=moment(record["completedAt"]),
        errors=[ProductOrderErrorMessage.model_validate(error) for error in record["errors"]],
    )
