"""What the sms-worker's integration tests share: the broker, a probe of the events the worker
publishes (as the portal sees them), and VerificationRequested as the portal publishes it."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractQueue, AbstractRobustConnection
from mport_shared.events import (
    VerificationCodeSent,
    VerificationDelivered,
    VerificationDeliveryFailed,
    VerificationRequested,
    envelop,
)
from mport_shared.messaging.connection import confirming_channel, connect
from mport_shared.messaging.topology import EXCHANGE, declare_all, declare_exchange
from mport_shared.testing import wait_for

CODE = "730419"

RESULT_KEYS = (
    VerificationCodeSent.event_type,
    VerificationDelivered.event_type,
    VerificationDeliveryFailed.event_type,
)


@pytest.fixture
async def broker(amqp_url: str) -> AsyncIterator[AbstractRobustConnection]:
    connection = await connect(amqp_url, name="test")
    await declare_all(await confirming_channel(connection))
    yield connection
    await connection.close()


class Results:
    """Every event the sms-worker published, as the portal would see them."""

    def __init__(self, queue: AbstractQueue) -> None:
        self._queue = queue
        self.events: list[dict[str, Any]] = []

    async def collect(self) -> None:
        while (message := await self._queue.get(no_ack=True, fail=False)) is not None:
            self.events.append(json.loads(message.body))

    def of(self, verification_id: uuid.UUID, event_type: str | None = None) -> list[dict[str, Any]]:
        return [
            e["data"]
            for e in self.events
            if e["data"]["verification_id"] == str(verification_id) and event_type in (None, e["type"])
        ]

    async def wait(
        self, verification_id: uuid.UUID, event_type: str, *, timeout_s: float = 15
    ) -> dict[str, Any]:
        async def seen() -> bool:
            await self.collect()
            return bool(self.of(verification_id, event_type))

        await wait_for(seen, timeout_s=timeout_s, what=f"{event_type} for {verification_id}")
        return self.of(verification_id, event_type)[0]


@pytest.fixture
async def results(broker: AbstractRobustConnection) -> Results:
    channel = await broker.channel()
    queue = await channel.declare_queue("sms-probe", durable=True, arguments={"x-queue-type": "quorum"})
    for key in RESULT_KEYS:
        await queue.bind(EXCHANGE, routing_key=key)
    return Results(queue)


def requested(*, msisdn: str = "4748123456", expires_in_s: float = 600) -> VerificationRequested:
    return VerificationRequested(
        verification_id=uuid.uuid4(),
        company_id=uuid.uuid4(),
        employee_id=uuid.uuid4(),
        msisdn=msisdn,
        code=CODE,
        expires_at=datetime.now(UTC) + timedelta(seconds=expires_in_s),
    )


async def publish(
    broker: AbstractRobustConnection, payload: VerificationRequested, *, times: int = 1
) -> None:
    """As the portal's relay does, but with no TTL: these tests want the worker's own clock check."""
    envelope = envelop(payload, source="/test", correlation_id=str(payload.verification_id))
    channel = await confirming_channel(broker)
    exchange = await declare_exchange(channel)
    for _ in range(times):
        await exchange.publish(
            aio_pika.Message(
                envelope.model_dump_json().encode(),
                message_id=envelope.id,
                type=envelope.type,
                content_type="application/cloudevents+json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key=envelope.type,
        )
    await channel.close()
