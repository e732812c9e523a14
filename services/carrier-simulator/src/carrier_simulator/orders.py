"""The carrier's order book: stores orders in memory, dedups by externalId, runs their life cycle."""

from __future__ import annotations

import asyncio
import itertools
import random
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

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


@dataclass(frozen=True, slots=True)
class _Failure:
    code: str
    reason: str
    message: str
    item_ids: tuple[str, ...]


@dataclass(slots=True)
class _Order:
    id: str
    request: ProductOrderCreate
    created_at: datetime
    expected_completion: datetime
    # Decided when the order arrives, so a config change never alters an order in flight.
    outcome: tuple[_Failure, ...]
    state: ProductOrderState = ProductOrderState.ACKNOWLEDGED
    completed_at: datetime | None = None
    errors: list[ProductOrderErrorMessage] = field(default_factory=list)


class OrderBook:
    """Every product order the carrier has accepted, and the timers that move them along."""

    def __init__(
        self,
        *,
        behaviour: Behaviour,
        known_offerings: Iterable[str],
        rng: random.Random,
        max_orders: int,
    ) -> None:
        self._behaviour = behaviour
        self._known_offerings = frozenset(known_offerings)
        self._rng = rng
        self._max_orders = max_orders
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
            # Rendered before any timer can run, so the answer shows the order as acknowledged.
            return self._render(order), True

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

    def _find_by_external_ids(self, request: ProductOrderCreate) -> _Order | None:
        for external in request.external_id:
            order_id = self._by_external_id.get(external.id)
            if order_id is not None:
                return self._orders[order_id]
        return None

    def _create(self, request: ProductOrderCreate) -> _Order:
        now = datetime.now(UTC)
        latency_s = self._behaviour.latency_ms / 1000
        order = _Order(
            id=str(uuid.uuid4()),
            request=request,
            created_at=now,
            expected_completion=now + timedelta(seconds=latency_s),
            outcome=self._decide_outcome(request),
        )
        self._orders[order.id] = order
        for external in request.external_id:
            self._by_external_id[external.id] = order.id
        self._forget_oldest()
        self._schedule(order, latency_s)
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

    def _schedule(self, order: _Order, latency_s: float) -> None:
        # Timers rather than a task per order: nothing polls, and nothing runs between steps.
        loop = asyncio.get_running_loop()
        if latency_s == 0:
            loop.call_soon(self._finish, order)
            return
        loop.call_later(latency_s / 2, self._start, order)
        loop.call_later(latency_s, self._finish, order)

    @staticmethod
    def _start(order: _Order) -> None:
        if order.state is ProductOrderState.ACKNOWLEDGED:
            order.state = ProductOrderState.IN_PROGRESS

    @staticmethod
    def _finish(order: _Order) -> None:
        now = datetime.now(UTC)
        if not order.outcome:
            order.state = ProductOrderState.COMPLETED
            order.completed_at = now
            return
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

    def _forget_oldest(self) -> None:
        while len(self._orders) > self._max_orders:
            oldest_id = next(iter(self._orders))
            oldest = self._orders.pop(oldest_id)
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
