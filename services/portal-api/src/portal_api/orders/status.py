"""The broker's edge of the status events from the workers: each is handed to the use case
(orders.service.apply_status_event), and what it cannot apply becomes a PermanentFailure."""

from __future__ import annotations

from dataclasses import dataclass

from mport_shared.events import (
    Envelope,
    EventPayload,
    OrderCompleted,
    OrderFailed,
    OrderProgressed,
    OrderSubmitted,
)
from mport_shared.logging import get_logger
from mport_shared.messaging.consumer import Handler, PermanentFailure

from portal_api.orders.service import StatusOutcome, apply_status_event
from portal_api.unit_of_work import SqlUnitsOfWork

log = get_logger(__name__)


@dataclass
class OrderStatusHandlers:
    units: SqlUnitsOfWork

    def handlers(self) -> dict[str, Handler]:
        return {
            OrderSubmitted.event_type: self.on_event,
            OrderProgressed.event_type: self.on_event,
            OrderCompleted.event_type: self.on_event,
            OrderFailed.event_type: self.on_event,
        }

    async def on_event(self, envelope: Envelope[EventPayload]) -> None:
        # The live pages learn of changes from the bus themselves (portal_api.live), not from here.
        event = envelope.data
        if not isinstance(event, OrderSubmitted | OrderProgressed | OrderCompleted | OrderFailed):
            raise PermanentFailure(f"portal-api does not handle {type(event).__name__}")
        async with self.units.new() as uow:
            outcome = await apply_status_event(uow, message_id=envelope.id, event=event)
        if outcome is StatusOutcome.DUPLICATE:
            log.info("duplicate status event ignored", message_id=envelope.id)
        elif outcome is StatusOutcome.UNKNOWN_ORDER:
            order = (
                event.order_id
                if isinstance(event, OrderSubmitted | OrderProgressed)
                else event.order.order_id
            )
            raise PermanentFailure(f"status event for unknown order {order}")
