"""The one consumer loop: parse, handle concurrently, retry with delays, dead-letter with a reason."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import aio_pika
import structlog
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue
from pydantic import ValidationError

from mport_shared import metrics, tracing
from mport_shared.events import Envelope, EventPayload, parse_envelope
from mport_shared.logging import get_logger
from mport_shared.messaging.topology import ServiceQueue, declare_service_queue

log = get_logger(__name__)

ATTEMPT_HEADER = "x-mport-attempt"
REASON_HEADER = "x-mport-reason"
ATTEMPTS_HEADER = "x-mport-attempts"
ORIGINAL_ROUTING_KEY_HEADER = "x-mport-original-routing-key"
FAILED_AT_HEADER = "x-mport-failed-at"
# When attempt 1 failed; kept across retries, so a dead letter tells when its trouble began.
FIRST_FAILED_AT_HEADER = "x-mport-first-failed-at"

Handler = Callable[[Envelope[EventPayload]], Awaitable[None]]


class PermanentFailure(Exception):
    """Retrying cannot help (the message itself is wrong): dead-letter it at once."""


class Consumer:
    """Consumes a service's work queue with `prefetch` messages handled concurrently.

    A failing message is acked only after a copy has been confirmed on the next retry queue (or the
    dead-letter queue), so the queue behind it keeps flowing and nothing is lost in between."""

    def __init__(
        self,
        *,
        channel: AbstractChannel,
        queue: ServiceQueue,
        handlers: dict[str, Handler],
        retry_delays_ms: tuple[int, ...],
        prefetch: int,
    ) -> None:
        self._channel = channel
        self._queue = queue
        self._handlers = handlers
        self._retry_delays_ms = retry_delays_ms
        self._prefetch = prefetch
        self._amqp_queue: AbstractQueue | None = None
        self._consumer_tag: str | None = None
        self._in_flight: set[asyncio.Task[Any]] = set()

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    async def attached(self) -> bool:
        """True while the broker can deliver to us: our channel is open and our consumer is on it
        (not cancelled by the broker, not waiting for the robust connection to restore it)."""
        if self._consumer_tag is None or self._channel.is_closed:
            return False
        channel = await self._channel.get_underlay_channel()
        return not channel.is_closed and self._consumer_tag in getattr(channel, "consumers", {})

    def _event_type(self, message: AbstractIncomingMessage) -> str:
        # A label only for types we handle: a stray message's type must not grow the metrics.
        event_type = message.type or message.routing_key or ""
        return event_type if event_type in self._handlers else "other"

    async def start(self) -> None:
        await self._channel.set_qos(prefetch_count=self._prefetch)
        self._amqp_queue = await declare_service_queue(
            self._channel, self._queue, retry_delays_ms=self._retry_delays_ms
        )
        self._consumer_tag = await self._amqp_queue.consume(self._on_message)
        log.info("consuming", queue=self._queue.name, prefetch=self._prefetch)

    async def stop(self, *, grace_s: float) -> None:
        """Stop taking messages, then give those in hand `grace_s` to finish.

        What does not finish stays unacked and is redelivered to another consumer."""
        if self._amqp_queue is not None and self._consumer_tag is not None:
            try:
                await self._amqp_queue.cancel(self._consumer_tag)
            except Exception:
                log.warning("could not cancel consumer cleanly", exc_info=True)
        if self._in_flight:
            log.info("draining in-flight messages", count=len(self._in_flight))
            _, pending = await asyncio.wait(self._in_flight, timeout=grace_s)
            for task in pending:
                task.cancel()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            await self._process(message)
        finally:
            if task is not None:
                self._in_flight.discard(task)
            structlog.contextvars.unbind_contextvars("correlation_id", "event_type")

    async def _process(self, message: AbstractIncomingMessage) -> None:
        attempt = _int_header(message, ATTEMPT_HEADER, default=1)
        event_type = self._event_type(message)
        metrics.MESSAGES_CONSUMED.labels(self._queue.name, event_type).inc()
        started = time.perf_counter()
        try:
            envelope = parse_envelope(message.body)
        except ValueError as exc:
            # Validation errors list the offending fields, never their values in full.
            metrics.MESSAGES_FAILED.labels(self._queue.name, event_type).inc()
            await self._dead_letter(
                message, reason=f"invalid message: {_short(exc)}", attempt=attempt, cause="invalid"
            )
            return
        structlog.contextvars.bind_contextvars(
            correlation_id=envelope.correlationid,
            event_type=envelope.type,
        )
        # The trace continues from the span that wrote the event; log lines carry its ids.
        end_span = tracing.start_consuming(envelope, queue=self._queue.name, attempt=attempt)
        try:
            handler = self._handlers.get(envelope.type)
            if handler is None:
                raise PermanentFailure(f"no handler for {envelope.type} in {self._queue.name}")
            await tracing.handled(handler, envelope)
        except PermanentFailure as exc:
            metrics.MESSAGES_FAILED.labels(self._queue.name, event_type).inc()
            await self._dead_letter(message, reason=str(exc), attempt=attempt, cause="permanent")
        except Exception as exc:
            metrics.MESSAGES_FAILED.labels(self._queue.name, event_type).inc()
            await self._retry_or_dead_letter(message, exc, attempt=attempt)
        else:
            await message.ack()
        finally:
            end_span()
            metrics.HANDLER_SECONDS.labels(self._queue.name, event_type).observe(
                time.perf_counter() - started
            )

    async def _retry_or_dead_letter(
        self, message: AbstractIncomingMessage, exc: Exception, *, attempt: int
    ) -> None:
        reason = f"{type(exc).__name__}: {_short(exc)}"
        if attempt > len(self._retry_delays_ms):
            log.error("giving up on message", reason=reason, attempts=attempt, exc_info=exc)
            await self._dead_letter(message, reason=reason, attempt=attempt, cause="retries_exhausted")
            return
        delay = self._retry_delays_ms[attempt - 1]
        log.warning("message failed; retrying later", reason=reason, attempt=attempt, delay_ms=delay)
        if await self._forward(
            message,
            routing_key=self._queue.retry(delay),
            headers={
                ATTEMPT_HEADER: attempt + 1,
                REASON_HEADER: reason,
                FIRST_FAILED_AT_HEADER: _first_failed_at(message, datetime.now(UTC).isoformat()),
            },
        ):
            metrics.MESSAGES_RETRIED.labels(self._queue.name, self._event_type(message)).inc()

    async def _dead_letter(
        self, message: AbstractIncomingMessage, *, reason: str, attempt: int, cause: str
    ) -> None:
        log.error("message dead-lettered", reason=reason, attempts=attempt, queue=self._queue.name)
        now = datetime.now(UTC).isoformat()
        if await self._forward(
            message,
            routing_key=self._queue.dead_letter,
            headers={
                REASON_HEADER: reason,
                ATTEMPTS_HEADER: attempt,
                ORIGINAL_ROUTING_KEY_HEADER: _original_routing_key(message),
                FAILED_AT_HEADER: now,
                FIRST_FAILED_AT_HEADER: _first_failed_at(message, now),
                "x-mport-consumer": self._queue.name,
            },
        ):
            metrics.MESSAGES_DEAD_LETTERED.labels(self._queue.name, self._event_type(message), cause).inc()

    async def _forward(
        self, message: AbstractIncomingMessage, *, routing_key: str, headers: dict[str, Any]
    ) -> bool:
        """Copy the message to a queue by name, then ack the original once the copy is confirmed;
        False when the copy failed and the original was left for redelivery."""
        copy = aio_pika.Message(
            message.body,
            headers={**(message.headers or {}), **headers},
            content_type=message.content_type,
            message_id=message.message_id,
            correlation_id=message.correlation_id,
            type=message.type,
            timestamp=message.timestamp,
            expiration=message.expiration,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        try:
            await self._channel.default_exchange.publish(
                copy, routing_key=routing_key, mandatory=True, timeout=10
            )
        except Exception:
            # Leave the original unacked: the broker redelivers it, nothing is lost.
            log.warning("could not forward message; leaving it for redelivery", exc_info=True)
            await _nack_quietly(message)
            return False
        await message.ack()
        return True


def _original_routing_key(message: AbstractIncomingMessage) -> str:
    value = (message.headers or {}).get(ORIGINAL_ROUTING_KEY_HEADER)
    if isinstance(value, bytes):
        value = value.decode()
    # After a retry the message arrives from the default exchange; its type is the event type.
    return str(value or message.type or message.routing_key or "")


def _first_failed_at(message: AbstractIncomingMessage, now: str) -> str:
    value = (message.headers or {}).get(FIRST_FAILED_AT_HEADER)
    if isinstance(value, bytes):
        value = value.decode()
    return str(value) if value else now


def _int_header(message: AbstractIncomingMessage, name: str, *, default: int) -> int:
    value = (message.headers or {}).get(name)
    try:
        return int(value) if value is not None else default  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default


def _short(exc: BaseException, limit: int = 500) -> str:
    if isinstance(exc, ValidationError):
        # Where and what, never the value: a field of a message may be a one-time code.
        text = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'message'}: {error['msg']}"
            for error in exc.errors(include_url=False, include_input=False, include_context=False)
        )
    else:
        text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def _nack_quietly(message: AbstractIncomingMessage) -> None:
    try:
        await message.nack(requeue=True)
    except Exception:
        log.debug("nack failed; the channel is gone and the broker will redeliver", exc_info=True)
