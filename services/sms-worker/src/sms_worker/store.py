"""Where each verification's SMS is recorded: the sms_deliveries table, written together with the
outbox in one transaction whenever a change publishes an event.

Every change is a conditional UPDATE on the state it expects, so two deliveries of one message
(or two reports of one SMS) cannot both make it: the second matches no row."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from mport_shared.db import insert_if_absent
from mport_shared.events import (
    EventPayload,
    VerificationCodeSent,
    VerificationDelivered,
    VerificationDeliveryFailed,
    VerificationFailureCode,
    VerificationRequested,
    envelop,
)
from mport_shared.messaging.outbox import add_to_outbox
from mport_shared.tracing import continued
from sqlalchemy import Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sms_worker.domain import Outcome, SendState, outcome_of_report
from sms_worker.models import SmsDelivery, tables

SOURCE = "/mport/sms-worker"

_T: Table = SmsDelivery.__table__  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class Delivery:
    """A verification's SMS as recorded (never its code or text)."""

    verification_id: str
    msisdn: str
    expires_at: datetime
    state: SendState
    attempts: int
    outcome: Outcome | None
    traceparent: str | None


class ReportResult:
    UNKNOWN = "unknown"  # no SMS of ours has this id
    RECORDED = "recorded"  # an intermediate report, or one after the outcome was known
    PUBLISHED = "published"  # the outcome: its event is in the outbox


class Store(Protocol):
    """What the use cases need of the store; SqlDeliveryStore is the one on a database, the unit
    tests have one in memory."""

    async def claim(self, request: VerificationRequested, *, traceparent: str) -> Delivery: ...
    async def start_attempt(self, verification_id: str) -> bool: ...
    async def sent(self, verification_id: str, *, gateway_message_id: str, at: datetime) -> bool: ...
    async def retry_later(self, verification_id: str, *, error: str) -> bool: ...
    async def unknown(self, verification_id: str, *, error: str) -> bool: ...
    async def fail(
        self,
        verification_id: str,
        *,
        code: VerificationFailureCode,
        reason: str,
        at: datetime,
        expected: SendState,
    ) -> bool: ...
    async def report(self, verification_id: str, *, report_type: int, reply: str, at: datetime) -> str: ...


@dataclass
class SqlDeliveryStore:
    sessions: async_sessionmaker[AsyncSession]

    async def claim(self, request: VerificationRequested, *, traceparent: str) -> Delivery:
        """The verification's row: recorded as pending if this is the first time it is seen."""
        verification_id = str(request.verification_id)
        async with self.sessions.begin() as session:
            await insert_if_absent(
                session,
                _T,
                {
                    "verification_id": verification_id,
                    "company_id": str(request.company_id),
                    "msisdn": request.msisdn,
                    "expires_at": request.expires_at,
                    "state": SendState.PENDING.value,
                    "attempts": 0,
                    "traceparent": traceparent,
                },
                keys=["verification_id"],
            )
            row = (await session.execute(select(_T).where(_T.c.verification_id == verification_id))).one()
        return Delivery(
            verification_id=row.verification_id,
            msisdn=row.msisdn,
            expires_at=row.expires_at,
            state=SendState(row.state),
            attempts=row.attempts,
            outcome=Outcome(row.outcome) if row.outcome else None,
            traceparent=row.traceparent,
        )

    async def start_attempt(self, verification_id: str) -> bool:
        """pending → sending, committed before the gateway is called: a worker that dies during the
        call leaves `sending`, which the next one takes for "maybe sent" and never sends again."""
        async with self.sessions.begin() as session:
            return await _move(
                session,
                verification_id,
                SendState.PENDING,
                state=SendState.SENDING.value,
                attempts=_T.c.attempts + 1,
            )

    async def sent(self, verification_id: str, *, gateway_message_id: str, at: datetime) -> bool:
        async with self.sessions.begin() as session:
            moved = await _move(
                session,
                verification_id,
                SendState.SENDING,
                state=SendState.SENT.value,
                gateway_message_id=gateway_message_id,
                sent_at=at,
                last_error=None,
            )
            if moved:
                await _publish(
                    session,
                    verification_id,
                    VerificationCodeSent(
                        verification_id=uuid.UUID(verification_id),
                        gateway_message_id=gateway_message_id,
                        sent_at=at,
                    ),
                )
            return moved

    async def retry_later(self, verification_id: str, *, error: str) -> bool:
        """sending → pending: the gateway provably did not take it, so a later call may."""
        async with self.sessions.begin() as session:
            return await _move(
                session, verification_id, SendState.SENDING, state=SendState.PENDING.value, last_error=error
            )

    async def unknown(self, verification_id: str, *, error: str) -> bool:
        async with self.sessions.begin() as session:
            return await _move(
                session, verification_id, SendState.SENDING, state=SendState.UNKNOWN.value, last_error=error
            )

    async def fail(
        self,
        verification_id: str,
        *,
        code: VerificationFailureCode,
        reason: str,
        at: datetime,
        expected: SendState,
    ) -> bool:
        async with self.sessions.begin() as session:
            moved = await _move(
                session,
                verification_id,
                expected,
                state=SendState.FAILED.value,
                failure_code=code.value,
                failure_reason=reason,
            )
            if moved:
                await _publish(
                    session,
                    verification_id,
                    VerificationDeliveryFailed(
                        verification_id=uuid.UUID(verification_id),
                        reason=reason,
                        reason_code=code,
                        failed_at=at,
                    ),
                )
            return moved

    async def report(self, verification_id: str, *, report_type: int, reply: str, at: datetime) -> str:
        """Record a delivery report; the first one with an outcome publishes it, once."""
        outcome = outcome_of_report(report_type)
        async with self.sessions.begin() as session:
            found = await session.execute(
                update(_T)
                .where(_T.c.verification_id == verification_id)
                .values(last_report_type=report_type, last_report_reply=reply[:200], updated_at=func.now())
            )
            if getattr(found, "rowcount", 0) != 1:
                return ReportResult.UNKNOWN
            if outcome is None:
                return ReportResult.RECORDED
            # Only an SMS the gateway may have: a report can overtake the answer to sendsms
            # (still `sending`), or follow a call whose answer was lost (`unknown`).
            decided = await session.execute(
                update(_T)
                .where(
                    _T.c.verification_id == verification_id,
                    _T.c.outcome.is_(None),
                    _T.c.state.in_([SendState.SENDING.value, SendState.SENT.value, SendState.UNKNOWN.value]),
                )
                .values(outcome=outcome.value, outcome_at=at)
            )
            if getattr(decided, "rowcount", 0) != 1:
                return ReportResult.RECORDED
            payload: EventPayload
            if outcome is Outcome.DELIVERED:
                payload = VerificationDelivered(verification_id=uuid.UUID(verification_id), delivered_at=at)
            else:
                payload = VerificationDeliveryFailed(
                    verification_id=uuid.UUID(verification_id),
                    reason=f"the gateway reported the SMS not delivered (report type {report_type})",
                    reason_code=VerificationFailureCode.UNDELIVERED,
                    failed_at=at,
                )
            await _publish(session, verification_id, payload)
            return ReportResult.PUBLISHED


async def _move(session: AsyncSession, verification_id: str, expected: SendState, **values: object) -> bool:
    result = await session.execute(
        update(_T)
        .where(_T.c.verification_id == verification_id, _T.c.state == expected.value)
        .values(**values, updated_at=func.now())
    )
    return bool(getattr(result, "rowcount", 0) == 1)


async def _publish(session: AsyncSession, verification_id: str, payload: EventPayload) -> None:
    # Every event of a verification continues the trace its request arrived in.
    traceparent = await session.scalar(
        select(_T.c.traceparent).where(_T.c.verification_id == verification_id)
    )
    with continued(traceparent):
        envelope = envelop(payload, source=SOURCE, correlation_id=verification_id, subject=verification_id)
    await add_to_outbox(session, tables.outbox, envelope)
