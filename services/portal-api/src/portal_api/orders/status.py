"""Status events from the workers move orders forward and update the subscription on completion."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from mport_shared.db import insert_if_absent
from mport_shared.events import (
    Envelope,
    EventPayload,
    OrderCompleted,
    OrderFailed,
    OrderKind,
    OrderProgressed,
    OrderSubmitted,
)
from mport_shared.logging import get_logger
from mport_shared.messaging.consumer import Handler, PermanentFailure
from mport_shared.messaging.inbox import claim_message
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import lazyload

from portal_api.models import ActiveService, Order, SimCard, Subscription, tables
from portal_api.orders.domain import OPEN_STATUSES, OrderStatus, moves_forward

log = get_logger(__name__)
CONSUMER = "portal-api"


@dataclass
class OrderStatusHandlers:
    sessions: async_sessionmaker[AsyncSession]

    def handlers(self) -> dict[str, Handler]:
        return {
            OrderSubmitted.event_type: self.on_event,
            OrderProgressed.event_type: self.on_event,
            OrderCompleted.event_type: self.on_event,
            OrderFailed.event_type: self.on_event,
        }

    async def on_event(self, envelope: Envelope[EventPayload]) -> None:
        # The live pages learn of changes from the bus themselves (portal_api.live), not from here.
        async with self.sessions.begin() as session:
            if not await claim_message(session, tables.inbox, consumer=CONSUMER, message_id=envelope.id):
                log.info("duplicate status event ignored", message_id=envelope.id)
                return
            await self._apply(session, envelope.data)

    async def _apply(self, session: AsyncSession, event: EventPayload) -> Order | None:
        match event:
            case OrderSubmitted():
                order = await self._order(session, event.order_id)
                if not moves_forward(order.status, OrderStatus.SUBMITTED):
                    return None
                order.carrier_order_id = event.carrier_order_id
                _carrier_says(
                    order,
                    state=event.carrier_state,
                    expected=event.expected_completion_at,
                    at=event.submitted_at,
                )
                return self._move(order, OrderStatus.SUBMITTED)
            case OrderProgressed():
                order = await self._order(session, event.order_id)
                if order.status not in OPEN_STATUSES:
                    return None  # done: the carrier's later news changes nothing
                if order.carrier_state_at is not None and _utc(event.progressed_at) < order.carrier_state_at:
                    return None  # older than what the order shows (a retried message came late)
                order.carrier_order_id = event.carrier_order_id
                _carrier_says(
                    order,
                    state=event.carrier_state,
                    expected=event.expected_completion_at,
                    at=event.progressed_at,
                )
                if moves_forward(order.status, OrderStatus.SUBMITTED):
                    # Its OrderSubmitted is late (in a retry queue): the carrier has the order.
                    return self._move(order, OrderStatus.SUBMITTED)
                log.info("carrier progress", order_id=str(order.id), state=event.carrier_state)
                order.updated_at = datetime.now(UTC)
                return order
            case OrderCompleted():
                order = await self._order(session, event.order.order_id)
                if not moves_forward(order.status, OrderStatus.COMPLETED):
                    return None
                order.carrier_order_id = event.carrier_order_id
                self._move(order, OrderStatus.COMPLETED)
                # After the order's own changes, so that they go out in one UPDATE.
                await _apply_to_subscription(session, order)
                return order
            case OrderFailed():
                order = await self._order(session, event.order.order_id)
                if not moves_forward(order.status, OrderStatus.FAILED):
                    return None
                order.failure_reason = event.reason
                order.failure_code = event.reason_code.value
                return self._move(order, OrderStatus.FAILED)
        raise PermanentFailure(f"portal-api does not handle {type(event).__name__}")

    @staticmethod
    async def _order(session: AsyncSession, order_id: uuid.UUID) -> Order:
        # Without joining its product (the default): a status change needs the order row alone.
        order = await session.scalar(
            select(Order)
            .where(Order.id == order_id)
            .options(lazyload(Order.product))
            .with_for_update(of=Order)
        )
        if order is None:
            raise PermanentFailure(f"status event for unknown order {order_id}")
        return order

    @staticmethod
    def _move(order: Order, status: OrderStatus) -> Order:
        log.info("order status changed", order_id=str(order.id), old=order.status, new=status.value)
        order.status = status.value
        order.updated_at = datetime.now(UTC)
        return order


def _carrier_says(order: Order, *, state: str | None, expected: datetime | None, at: datetime) -> None:
    """What the carrier last said of the order (its state, when it expects to be done), and when."""
    order.carrier_state = state
    order.expected_completion_at = _utc(expected) if expected is not None else None
    order.carrier_state_at = _utc(at)


def _utc(moment: datetime) -> datetime:
    # Events carry UTC times; one without a zone (a carrier's date passed on as it came) is UTC too.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def _apply_to_subscription(session: AsyncSession, order: Order) -> None:
    """A completed order changes the subscription: an add-on, a new plan, or a SIM card."""
    if OrderKind(order.kind) is OrderKind.ADDON:
        # The most common case needs no subscription loaded (with its services and SIM cards).
        await insert_if_absent(
            session,
            ActiveService,
            {
                "subscription_id": order.subscription_id,
                "product_code": order.product_code,
                "order_id": order.id,
            },
            keys=["subscription_id", "product_code"],
        )
        return
    subscription = await session.get(Subscription, order.subscription_id)
    if subscription is None:
        log.warning("completed order for a subscription no longer on file", order_id=str(order.id))
        return
    match OrderKind(order.kind):
        case OrderKind.PLAN:
            subscription.plan_code = order.product_code
        case OrderKind.SIM_ORDER:
            session.add(SimCard(subscription_id=subscription.id, label="Nytt SIM (sendt)", status="ordered"))
        case OrderKind.SIM_ACTIVATION:
            main = next((s for s in subscription.sim_cards if s.label == "Sim hovedkort"), None)
            if main is None:
                session.add(
                    SimCard(
                        subscription_id=subscription.id,
                        label="Sim hovedkort",
                        icc=order.details.get("icc"),
                        status="active",
                    )
                )
            else:
                main.icc = order.details.get("icc")
                main.status = "active"
