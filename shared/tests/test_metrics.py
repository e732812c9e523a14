"""The shared metrics move when what they count happens: the consumer's counters on a real
RabbitMQ (consumed, failed, retried, dead-lettered by cause, handler latency), and the HTTP
metrics by route template, never the raw path."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import aio_pika
import httpx
import pytest
from aio_pika.abc import AbstractRobustConnection
from fastapi import FastAPI, HTTPException
from mport_shared.events import Envelope, EventPayload, OrderSubmitted, envelop
from mport_shared.gauges import GaugeSampler
from mport_shared.http import instrument
from mport_shared.messaging.connection import confirming_channel, connect
from mport_shared.messaging.consumer import Consumer, PermanentFailure
from mport_shared.messaging.topology import ServiceQueue, declare_exchange
from mport_shared.testing import wait_for
from prometheus_client import REGISTRY

TYPE = OrderSubmitted.event_type


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _event() -> Envelope[EventPayload]:
    oid = uuid.uuid4()
    payload = OrderSubmitted(order_id=oid, carrier_order_id="c", submitted_at=datetime.now(UTC))
    return envelop(payload, source="/test", correlation_id=str(oid))


@pytest.fixture
async def broker(amqp_url: str) -> AsyncIterator[AbstractRobustConnection]:
    connection = await connect(amqp_url, name="test")
    yield connection
    await connection.close()


@pytest.mark.integration
async def test_the_consumer_counts_each_delivery_failure_retry_and_dead_letter_by_event_type(
    broker: AbstractRobustConnection,
) -> None:
    queue = ServiceQueue(f"it-metrics-{uuid.uuid4().hex[:6]}", (TYPE,))
    name = queue.name
    flaky, poison, handled = _event(), _event(), _event()
    failed_once: set[str] = set()

    async def handle(envelope: Envelope[EventPayload]) -> None:
        if envelope.id == poison.id:
            raise PermanentFailure("this one is wrong")
        if envelope.id == flaky.id and envelope.id not in failed_once:
            failed_once.add(envelope.id)
            raise RuntimeError("the database blinked")

    consumer = Consumer(
        channel=await confirming_channel(broker),
        queue=queue,
        handlers={TYPE: handle},
        retry_delays_ms=(50,),
        prefetch=4,
    )
    await consumer.start()
    try:
        assert await consumer.attached()
        channel = await confirming_channel(broker)
        exchange = await declare_exchange(channel)
        for event in (flaky, poison, handled):
            await exchange.publish(
                aio_pika.Message(event.model_dump_json().encode(), type=event.type, message_id=event.id),
                routing_key=event.type,
            )
        # Not an envelope at all, under a type the queue takes, and a type nobody handles.
        await channel.default_exchange.publish(aio_pika.Message(b"{not json", type=TYPE), routing_key=name)
        await channel.default_exchange.publish(
            aio_pika.Message(b"{}", type="mport.something.else.v1"), routing_key=name
        )

        async def all_taken() -> bool:
            return _sample("mport_messages_consumed_total", queue=name, event_type=TYPE) == 5

        await wait_for(all_taken, what="the five deliveries of the queue's type (one a retry)")

        async def stray_taken() -> bool:
            return _sample("mport_messages_consumed_total", queue=name, event_type="other") == 1

        await wait_for(stray_taken, what="the stray type, counted as other")
    finally:
        await consumer.stop(grace_s=1)
    assert _sample("mport_messages_failed_total", queue=name, event_type=TYPE) == 3
    assert _sample("mport_messages_retried_total", queue=name, event_type=TYPE) == 1
    assert _sample("mport_messages_dead_lettered_total", queue=name, event_type=TYPE, cause="permanent") == 1
    assert _sample("mport_messages_dead_lettered_total", queue=name, event_type=TYPE, cause="invalid") == 1
    assert _sample("mport_messages_dead_lettered_total", queue=name, event_type="other", cause="invalid") == 1
    # Timed: every delivery that reached the handler (the unparseable one never did).
    assert _sample("mport_handler_seconds_count", queue=name, event_type=TYPE) == 4


async def test_http_metrics_label_the_route_template_and_status_class_never_the_raw_path() -> None:
    app = FastAPI()
    path = f"/it-{uuid.uuid4().hex[:6]}/orders/{{order_id}}"

    @app.get(path)
    async def order(order_id: str) -> dict[str, str]:
        if order_id == "missing":
            raise HTTPException(404)
        return {"id": order_id}

    instrument(app)
    before = _sample("mport_http_requests_total", method="GET", route="unmatched", status="4xx")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://app") as client:
        for order_id in ("a1", "b2", "missing"):
            await client.get(path.replace("{order_id}", order_id))
        await client.get("/wp-login.php")
        await client.request("BREW", path.replace("{order_id}", "c3"))
    assert _sample("mport_http_requests_total", method="GET", route=path, status="2xx") == 2
    assert _sample("mport_http_requests_total", method="GET", route=path, status="4xx") == 1
    assert _sample("mport_http_request_duration_seconds_count", method="GET", route=path) == 3
    assert _sample("mport_http_requests_total", method="GET", route="unmatched", status="4xx") == before + 1
    assert _sample("mport_http_requests_total", method="other", route=path, status="4xx") == 1  # 405
    exposed = {s.labels.get("route") for m in REGISTRY.collect() for s in m.samples}
    assert not any("a1" in r or "wp-login" in r for r in exposed if r)


async def test_the_gauge_sampler_runs_each_sample_at_its_own_interval_and_survives_a_failing_one() -> None:
    runs = {"fast": 0, "table": 0, "broken": 0}

    def counting(name: str, *, fail: bool = False) -> Callable[[], Awaitable[None]]:
        async def sample() -> None:
            runs[name] += 1
            if fail:
                raise RuntimeError("database away")

        return sample

    sampler = GaugeSampler(interval_s=0.01)
    sampler.add(counting("broken", fail=True))
    sampler.add(counting("fast"))
    sampler.add(counting("table"), interval_s=60)
    for _ in range(3):
        await sampler.sample_once()
        await asyncio.sleep(0.01)
    assert runs == {"fast": 3, "table": 1, "broken": 3}
