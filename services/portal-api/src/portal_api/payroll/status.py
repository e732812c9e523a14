"""The broker's edge of the payroll-worker's deduction events: each line is handed to the use case
(payroll.service.record_deduction), which adds it to the portal's read model once."""

from __future__ import annotations

from dataclasses import dataclass

from mport_shared.events import Envelope, EventPayload, PayrollDeductionRecorded, PayrollDeductionReversed
from mport_shared.logging import get_logger
from mport_shared.messaging.consumer import Handler, PermanentFailure

from portal_api.payroll.service import RecordOutcome, record_deduction
from portal_api.unit_of_work import SqlUnitsOfWork

log = get_logger(__name__)


@dataclass
class DeductionEventHandlers:
    units: SqlUnitsOfWork

    def handlers(self) -> dict[str, Handler]:
        return {
            PayrollDeductionRecorded.event_type: self.on_event,
            PayrollDeductionReversed.event_type: self.on_event,
        }

    async def on_event(self, envelope: Envelope[EventPayload]) -> None:
        event = envelope.data
        async with self.units.new() as uow:
            if isinstance(event, PayrollDeductionRecorded):
                outcome = await record_deduction(
                    uow, message_id=envelope.id, line=event.line, recorded_at=event.recorded_at
                )
            elif isinstance(event, PayrollDeductionReversed):
                outcome = await record_deduction(
                    uow,
                    message_id=envelope.id,
                    line=event.line,
                    recorded_at=event.reversed_at,
                    reverses_line_id=event.reverses_line_id,
                    reason=event.reason,
                )
            else:
                raise PermanentFailure(f"portal-api does not handle {type(event).__name__} here")
        if outcome is RecordOutcome.DUPLICATE:
            log.info(
                "duplicate deduction line ignored", message_id=envelope.id, line_id=str(event.line.line_id)
            )
