"""Status events from the workers move orders forward and update the subscription on completion."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

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
from sqlalchemy import Table, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal_api.models import ActiveService, Order, SimCard, Subscription, tables
from portal_api.orders.domain import OPEN_STATUSES, OrderStatus

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

    async def _apply(self, session: AsyncSession, event: EventPayload) -> None:
        """Each event is one conditional UPDATE: the condition is the rule (status only moves
        forward; older carrier news never overwrites newer), so a late, repeated or contradicting
        event matches no row and changes nothing."""
        now = datetime.now(UTC)
        match event:
            case OrderSubmitted():
                changed = await _update(
                    session,
                    event.order_id,
                    _ORDERS.c.status == OrderStatus.RECEIVED.value,
                    status=OrderStatus.SUBMITTED.value,
                    carrier_order_id=event.carrier_order_id,
                    **_carrier_says(event.carrier_state, event.expected_completion_at, event.submitted_at),
                    updated_at=now,
                )
            case OrderProgressed():
                at = _utc(event.progressed_at)
                changed = await _update(
                    session,
                    event.order_id,
                    _ORDERS.c.status.in_(OPEN_STATUSES),
                    or_(_ORDERS.c.carrier_state_at.is_(None), _ORDERS.c.carrier_state_at <= at),
                    # A progressed order with the carrier is submitted, even if its OrderSubmitted
                    # is late (in a retry queue).
                    status=OrderStatus.SUBMITTED.value,
                    carrier_order_id=event.carrier_order_id,
                    **_carrier_says(event.carrier_state, event.expected_completion_at, at),
                    updated_at=now,
                )
            case OrderCompleted():
                changed = await _update(
                    session,
                    event.order.order_id,
                    _ORDERS.c.status.in_(OPEN_STATUSES),
                    status=OrderStatus.COMPLETED.value,
                    carrier_order_id=event.carrier_order_id,
                    updated_at=now,
                )
                if changed is not None:
                    await _apply_to_subscription(session, changed)
            case OrderFailed():
                changed = await _update(
                    session,
                    event.order.order_id,
                    _ORDERS.c.status.in_(OPEN_STATUSES),
                    status=OrderStatus.FAILED.value,
                    failure_reason=event.reason,
                    failure_code=event.reason_code.value,
                    updated_at=now,
                )
            case _:
                raise PermanentFailure(f"portal-api does not handle {type(event).__name__}")
        if changed is None:
            order_id = (
                event.order_id
                if isinstance(event, OrderSubmitted | OrderProgressed)
                else event.order.order_id
            )
            if await session.scalar(select(_ORDERS.c.id).where(_ORDERS.c.id == order_id)) is None:
                raise PermanentFailure(f"status event for unknown order {order_id}")
            return  # late, repeated or contradicting: nothing changes
        log.info("order status changed", order_id=str(changed.id), status=changed.status)


_ORDERS: Table = Order.__table__  # type: ignore[assignment]


async def _update(session: AsyncSession, order_id: uuid.UUID, *conditions: Any, **values: Any) -> Any:
    """Change the order if `conditions` hold; the changed order's row, or None."""
    result = await session.execute(
        update(_ORDERS)
        .where(_ORDERS.c.id == order_id, *conditions)
        .values(**values)
        .returning(
            _ORDERS.c.id,
            _ORDERS.c.status,
            _ORDERS.c.kind,
            _ORDERS.c.subscription_id,
            _ORDERS.c.product_code,
            _ORDERS.c.details,
        )
    )
    return result.first()


def _carrier_says(state: str | None, expected: datetime | None, at: datetime) -> dict[str, Any]:
    """What the carrier last said of the order (its state, when it expects to be done), and when."""
    return {
        "carrier_state": state,
        "expected_completion_at": _utc(expected) if expected is not None else None,
        "carrier_state_at": _utc(at),
    }


def _utc(moment: datetime) -> datetime:
    # Events carry UTC times; one without a zone (a carrier's date passed on as it came) is UTC too.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def _apply_to_subscription(session: AsyncSession, order: Any) -> None:
    """A completed order (its row) changes the subscription: an add-on, a new plan, or a SIM card."""
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
