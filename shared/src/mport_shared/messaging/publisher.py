"""The one way events leave a service: confirmed, mandatory, persistent publishes."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aio_pika
from aio_pika.abc import AbstractExchange, DeliveryMode

from mport_shared.events import CONTENT_TYPE, Envelope, EventPayload


@dataclass(frozen=True, slots=True, kw_only=True)
class OutgoingMessage:
    """A ready-to-send message: the serialized envelope plus its AMQP properties."""

    message_id: str
    routing_key: str
    body: bytes
    headers: Mapping[str, Any] = field(default_factory=dict)
    expires_at: datetime | None = None

    @classmethod
    def from_envelope(
        cls, envelope: Envelope[EventPayload], *, expires_at: datetime | None = None
    ) -> OutgoingMessage:
        return cls(
            message_id=envelope.id,
            routing_key=envelope.type,
            body=envelope.model_dump_json().encode(),
            headers={"correlationid": envelope.correlationid, "traceparent": envelope.traceparent},
            expires_at=expires_at,
        )


def to_amqp(message: OutgoingMessage, *, now: datetime) -> aio_pika.Message:
    expiration: float | None = None
    if message.expires_at is not None:
        # Never a negative TTL: an already-expired message is dropped by the broker right away.
        expiration = max((message.expires_at - now).total_seconds(), 0.001)
    headers = dict(message.headers)
    return aio_pika.Message(
        message.body,
        message_id=message.message_id,
        type=message.routing_key,
        content_type=CONTENT_TYPE,
        correlation_id=str(headers.get("correlationid") or "") or None,
        delivery_mode=DeliveryMode.PERSISTENT,
        headers=headers,
        expiration=expiration,
        timestamp=now,
    )


class Publisher:
    """Publishes to the events exchange and returns only when the broker has confirmed every message."""

    def __init__(self, exchange: AbstractExchange, *, confirm_timeout_s: float = 10.0) -> None:
        self._exchange = exchange
        self._confirm_timeout_s = confirm_timeout_s

    async def publish(self, message: OutgoingMessage, *, now: datetime) -> None:
        """Publish one message; raises if it is nacked or returned as unroutable."""
        await self._exchange.publish(
            to_amqp(message, now=now),
            routing_key=message.routing_key,
            mandatory=True,
            timeout=self._confirm_timeout_s,
        )

    async def publish_many(
        self, messages: Sequence[OutgoingMessage], *, now: datetime
    ) -> list[BaseException | None]:
        """Send all, then await all confirms together (pipelined): one round trip covers a batch.

        Returns, per message, None when the broker confirmed it, or the error."""
        results = await asyncio.gather(*(self.publish(m, now=now) for m in messages), return_exceptions=True)
        return [r if isinstance(r, BaseException) else None for r in results]
