"""The broker's edge of the sms-worker's delivery reports: each is handed to the use case
(verifications.service.apply_delivery_event); one for a verification not on file is a
PermanentFailure (a dead letter with the reason)."""

from __future__ import annotations

from dataclasses import dataclass

from mport_shared.events import (
    Envelope,
    EventPayload,
    VerificationCodeSent,
    VerificationDelivered,
    VerificationDeliveryFailed,
)
from mport_shared.logging import get_logger
from mport_shared.messaging.consumer import Handler, PermanentFailure

from portal_api import metrics
from portal_api.unit_of_work import SqlUnitsOfWork
from portal_api.verifications.service import DeliveryOutcome, apply_delivery_event

log = get_logger(__name__)


@dataclass
class VerificationStatusHandlers:
    units: SqlUnitsOfWork

    def handlers(self) -> dict[str, Handler]:
        return {
            VerificationCodeSent.event_type: self.on_event,
            VerificationDelivered.event_type: self.on_event,
            VerificationDeliveryFailed.event_type: self.on_event,
        }

    async def on_event(self, envelope: Envelope[EventPayload]) -> None:
        # The live pages learn of it from the bus themselves (portal_api.live), not from here.
        event = envelope.data
        if not isinstance(event, VerificationCodeSent | VerificationDelivered | VerificationDeliveryFailed):
            raise PermanentFailure(f"portal-api does not handle {type(event).__name__} here")
        async with self.units.new() as uow:
            outcome = await apply_delivery_event(uow, message_id=envelope.id, event=event)
        if outcome is DeliveryOutcome.DUPLICATE:
            log.info("duplicate delivery report ignored", message_id=envelope.id)
        elif outcome is DeliveryOutcome.UNKNOWN:
            raise PermanentFailure(f"delivery report for unknown verification {event.verification_id}")
        else:
            _count(event)


def _count(event: VerificationCodeSent | VerificationDelivered | VerificationDeliveryFailed) -> None:
    match event:
        case VerificationDeliveryFailed():
            metrics.VERIFICATION_DELIVERIES.labels("failed", event.reason_code.value).inc()
        case VerificationDelivered():
            metrics.VERIFICATION_DELIVERIES.labels("delivered", "").inc()
        case VerificationCodeSent():
            metrics.VERIFICATION_DELIVERIES.labels("code_sent", "").inc()
