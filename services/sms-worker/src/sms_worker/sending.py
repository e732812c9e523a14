"""The use case: one VerificationRequested becomes at most one SMS, or a visible failure.

At most once, even when the message is redelivered or the worker dies between the gateway's
answer and the ack: the SMS is recorded as `sending` (committed) before the gateway is called.
A later delivery that finds `sending` cannot know whether the gateway took it (or another
consumer is still waiting for its answer), and Kannel's sendsms has no idempotency key to ask
with, so it is taken as maybe sent and never sent again; if the gateway did take it, its
delivery report still arrives and is published. Only a call the
gateway provably did not take (it answered 503, or was never reached) is made again, with
growing delays, for as long as the code lives."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from mport_shared.events import Envelope, EventPayload, VerificationFailureCode, VerificationRequested
from mport_shared.logging import get_logger
from mport_shared.messaging.consumer import PermanentFailure
from mport_shared.tracing import current_traceparent

from sms_worker import metrics
from sms_worker.adapters.gateway import (
    GatewayOutcomeUnknown,
    GatewayRejected,
    GatewayUnavailable,
    SendResult,
    SmsGateway,
)
from sms_worker.domain import SendState, is_allowed, retry_delay_s, sms_text
from sms_worker.store import Store

log = get_logger(__name__)

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class SmsSending:
    store: Store
    gateway: SmsGateway
    allowed_prefixes: tuple[str, ...] = ("47",)
    retry_first_s: float = 1.0
    retry_max_s: float = 30.0
    # A code with less left than this is not sent: it would die before it is typed.
    min_remaining_s: float = 5.0
    clock: Clock = utc_now
    sleep: Sleep = asyncio.sleep

    async def on_verification_requested(self, envelope: Envelope[EventPayload]) -> None:
        if not isinstance(envelope.data, VerificationRequested):
            raise PermanentFailure(f"sms-worker cannot send a {type(envelope.data).__name__}")
        request = envelope.data
        verification_id = str(request.verification_id)
        # Under the handler's span: the delivery reports' events, later, join the trace there.
        delivery = await self.store.claim(request, traceparent=current_traceparent())
        if delivery.state is SendState.SENDING:
            # Another delivery of this message is calling the gateway right now, or one did and
            # its worker died before recording the answer: either way, maybe sent. The row is
            # left as it is, so the call in hand can still record its answer.
            log.warning(
                "this SMS is being sent, or may have been by a worker that stopped; not sending it again",
                verification_id=verification_id,
            )
            return
        if delivery.state is not SendState.PENDING:
            log.info(
                "duplicate VerificationRequested ignored",
                verification_id=verification_id,
                state=delivery.state.value,
            )
            return
        if not is_allowed(request.msisdn, self.allowed_prefixes):
            await self._fail(
                verification_id,
                VerificationFailureCode.NOT_ALLOWED,
                "we do not send SMS to numbers in this country",
                expected=SendState.PENDING,
            )
            return
        attempts = delivery.attempts
        latest = request.expires_at - timedelta(seconds=self.min_remaining_s)
        while True:
            if self.clock() >= latest:
                reason = (
                    "the code expired before the SMS gateway took the SMS"
                    if attempts
                    else "the code had expired before it could be sent"
                )
                await self._fail(
                    verification_id, VerificationFailureCode.EXPIRED, reason, expected=SendState.PENDING
                )
                return
            if not await self.store.start_attempt(verification_id):
                log.info("another delivery of this request is sending it", verification_id=verification_id)
                return
            attempts += 1
            try:
                result = await self._send(request)
            except GatewayRejected as exc:
                await self._fail(
                    verification_id,
                    VerificationFailureCode.REJECTED,
                    f"the SMS gateway refused the SMS ({exc.reason})",
                    expected=SendState.SENDING,
                )
                return
            except GatewayOutcomeUnknown as exc:
                await self.store.unknown(verification_id, error=exc.reason)
                log.warning(
                    "the gateway may or may not have taken the SMS; not sending it again",
                    verification_id=verification_id,
                    reason=exc.reason,
                )
                return
            except GatewayUnavailable as exc:
                await self.store.retry_later(verification_id, error=exc.reason)
                delay = retry_delay_s(attempts, first_s=self.retry_first_s, max_s=self.retry_max_s)
                # Wake up in time to fail it as expired, rather than sleep past the code's life.
                delay = max(0.0, min(delay, (latest - self.clock()).total_seconds()))
                log.warning(
                    "the SMS gateway did not take the SMS; trying again",
                    verification_id=verification_id,
                    attempts=attempts,
                    retry_in_s=round(delay, 3),
                    reason=exc.reason,
                )
                await self.sleep(delay)
                continue
            await self.store.sent(
                verification_id, gateway_message_id=result.gateway_message_id, at=self.clock()
            )
            log.info(
                "SMS handed to the gateway",
                verification_id=verification_id,
                gateway_message_id=result.gateway_message_id,
                queued=result.queued,
                attempts=attempts,
            )
            return

    async def _send(self, request: VerificationRequested) -> SendResult:
        loop = asyncio.get_running_loop()
        started, outcome = loop.time(), "unknown"
        try:
            result = await self.gateway.send(
                to=request.msisdn,
                text=sms_text(request.code, request.expires_at),
                delivery_id=str(request.verification_id),
            )
            outcome = "sent"
            return result
        except GatewayRejected:
            outcome = "rejected"
            raise
        except GatewayUnavailable:
            outcome = "unavailable"
            raise
        finally:
            metrics.GATEWAY_CALLS.labels(outcome).observe(loop.time() - started)

    async def _fail(
        self, verification_id: str, code: VerificationFailureCode, reason: str, *, expected: SendState
    ) -> None:
        if await self.store.fail(
            verification_id, code=code, reason=reason, at=self.clock(), expected=expected
        ):
            metrics.NOT_SENT.labels(code.value).inc()
            log.info("SMS not sent", verification_id=verification_id, failure=code.value, reason=reason)
