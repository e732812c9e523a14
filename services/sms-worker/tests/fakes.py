"""What the sms-worker's unit tests use instead of I/O: the store in memory, a scripted gateway,
and a clock the test moves (sleeping moves it too)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from mport_shared.events import (
    EventPayload,
    VerificationCodeSent,
    VerificationDelivered,
    VerificationDeliveryFailed,
    VerificationFailureCode,
    VerificationRequested,
)
from sms_worker.adapters.gateway import SendResult
from sms_worker.domain import Outcome, SendState, outcome_of_report
from sms_worker.store import Delivery, ReportResult

NOW = datetime(2026, 12, 1, 13, 25, tzinfo=UTC)
CODE = "493817"


def request(
    *, msisdn: str = "4748123456", expires_in_s: float = 600, now: datetime = NOW
) -> VerificationRequested:
    return VerificationRequested(
        verification_id=uuid.uuid4(),
        company_id=uuid.uuid4(),
        employee_id=uuid.uuid4(),
        msisdn=msisdn,
        code=CODE,
        expires_at=now + timedelta(seconds=expires_in_s),
    )


@dataclass
class Clock:
    now: datetime = NOW
    slept: list[float] = field(default_factory=list)

    def __call__(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)


@dataclass
class MemoryStore:
    """The store's contract in memory: each change only from the state it expects."""

    rows: dict[str, Delivery] = field(default_factory=dict)
    published: list[EventPayload] = field(default_factory=list)
    reports: list[int] = field(default_factory=list)

    async def claim(self, request: VerificationRequested, *, traceparent: str) -> Delivery:
        key = str(request.verification_id)
        self.rows.setdefault(
            key,
            Delivery(
                verification_id=key,
                msisdn=request.msisdn,
                expires_at=request.expires_at,
                state=SendState.PENDING,
                attempts=0,
                outcome=None,
                traceparent=traceparent,
            ),
        )
        return self.rows[key]

    def _move(self, key: str, expected: SendState, to: SendState, **changes: object) -> bool:
        row = self.rows.get(key)
        if row is None or row.state is not expected:
            return False
        self.rows[key] = replace(row, state=to, **changes)  # type: ignore[arg-type]
        return True

    async def start_attempt(self, verification_id: str) -> bool:
        row = self.rows[verification_id]
        return self._move(verification_id, SendState.PENDING, SendState.SENDING, attempts=row.attempts + 1)

    async def sent(self, verification_id: str, *, gateway_message_id: str, at: datetime) -> bool:
        moved = self._move(verification_id, SendState.SENDING, SendState.SENT)
        if moved:
            self.published.append(
                VerificationCodeSent(
                    verification_id=uuid.UUID(verification_id),
                    gateway_message_id=gateway_message_id,
                    sent_at=at,
                )
            )
        return moved

    async def retry_later(self, verification_id: str, *, error: str) -> bool:
        return self._move(verification_id, SendState.SENDING, SendState.PENDING)

    async def unknown(self, verification_id: str, *, error: str) -> bool:
        return self._move(verification_id, SendState.SENDING, SendState.UNKNOWN)

    async def fail(
        self,
        verification_id: str,
        *,
        code: VerificationFailureCode,
        reason: str,
        at: datetime,
        expected: SendState,
    ) -> bool:
        moved = self._move(verification_id, expected, SendState.FAILED)
        if moved:
            self.published.append(
                VerificationDeliveryFailed(
                    verification_id=uuid.UUID(verification_id), reason=reason, reason_code=code, failed_at=at
                )
            )
        return moved

    async def report(self, verification_id: str, *, report_type: int, reply: str, at: datetime) -> str:
        row = self.rows.get(verification_id)
        if row is None:
            return ReportResult.UNKNOWN
        self.reports.append(report_type)
        outcome = outcome_of_report(report_type)
        if (
            outcome is None
            or row.outcome is not None
            or row.state not in (SendState.SENDING, SendState.SENT, SendState.UNKNOWN)
        ):
            return ReportResult.RECORDED
        self.rows[verification_id] = replace(row, outcome=outcome)
        uid = uuid.UUID(verification_id)
        self.published.append(
            VerificationDelivered(verification_id=uid, delivered_at=at)
            if outcome is Outcome.DELIVERED
            else VerificationDeliveryFailed(verification_id=uid, reason="not delivered", failed_at=at)
        )
        return ReportResult.PUBLISHED

    def of_type(self, kind: type[EventPayload]) -> list[EventPayload]:
        return [event for event in self.published if isinstance(event, kind)]


Answer = SendResult | Exception | Callable[[], SendResult]


@dataclass
class ScriptedGateway:
    """Answers from a script, one per call (the last one repeats); records what it was asked."""

    script: list[Answer] = field(default_factory=list)
    calls: list[dict[str, str]] = field(default_factory=list)

    async def send(self, *, to: str, text: str, delivery_id: str) -> SendResult:
        self.calls.append({"to": to, "text": text, "delivery_id": delivery_id})
        answer = self.script[min(len(self.calls), len(self.script)) - 1] if self.script else None
        if answer is None:
            return SendResult(gateway_message_id=delivery_id, queued=False)
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer()
        return answer
