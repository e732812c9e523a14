"""Admission control on real RabbitMQ: a new order waits while a queue of the order pipeline that
is being worked on is behind, is refused with 503 (nothing stored) when it stays behind, and goes
straight in when the queue only has nobody consuming it (a stopped worker is not a slow one)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aio_pika
import pytest
from mport_shared.messaging.topology import ORDER_WORKER
from mport_shared.testing import wait_for
from portal_api import metrics
from prometheus_client import REGISTRY

from .conftest import MakePortal, Portal, accepting, sign_in

pytestmark = pytest.mark.integration

BEHIND = 5  # INTAKE_MAX_BACKLOG in these tests


async def gated_portal(make_portal: MakePortal, *, wait_s: float) -> Portal:
    return await make_portal(
        INTAKE_MAX_BACKLOG=str(BEHIND), INTAKE_WAIT_S=str(wait_s), INTAKE_CHECK_INTERVAL_S="0.05"
    )


@asynccontextmanager
async def order_worker_queue(amqp_url: str, *, consuming: bool) -> AsyncIterator[aio_pika.abc.AbstractQueue]:
    """The order-worker's queue with 3 × BEHIND messages ready, and (if `consuming`) a stand-in
    worker that holds one delivery and takes no more: a worker that is there but not keeping up."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=1)
        queue = await channel.declare_queue(ORDER_WORKER.name, passive=True)
        for n in range(3 * BEHIND):
            await channel.default_exchange.publish(
                aio_pika.Message(b"{}", message_id=f"filler-{n}"), routing_key=ORDER_WORKER.name
            )
        if consuming:

            async def hold(message: aio_pika.abc.AbstractIncomingMessage) -> None:
                pass  # never acked: the stand-in is busy for good

            await queue.consume(hold)
        yield queue


async def until(gate: Any, *, is_open: bool) -> None:
    async def there() -> bool:
        return bool(gate.is_open) is is_open

    await wait_for(there, what=f"the gate to {'open' if is_open else 'close'}")


@dataclass
class Behind:
    """A portal whose order-worker is behind: its gate closed, Kari signed in."""

    gate: Any
    kari: Any
    csrf: str
    queue: aio_pika.abc.AbstractQueue


@asynccontextmanager
async def behind(make_portal: MakePortal, *, wait_s: float) -> AsyncIterator[Behind]:
    portal = await gated_portal(make_portal, wait_s=wait_s)
    gate = portal.app.state.intake_gate
    async with portal.client() as kari, order_worker_queue(portal.amqp_url, consuming=True) as queue:
        csrf = await sign_in(kari, "kari.nordmann@demo.no")
        await until(gate, is_open=False)
        yield Behind(gate=gate, kari=kari, csrf=csrf, queue=queue)


async def post_order(client: Any, csrf: str, key: str) -> Any:
    return await client.post(
        "/api/v1/orders",
        json={"product_code": "nettvern", **(await accepting(client, "nettvern"))},
        headers={"X-CSRF-Token": csrf, "Idempotency-Key": key},
    )


async def test_an_order_waits_while_the_order_worker_is_behind_and_goes_in_when_it_catches_up(
    make_portal: MakePortal,
) -> None:
    async with behind(make_portal, wait_s=30) as pipeline:
        kari, csrf = pipeline.kari, pipeline.csrf
        assert REGISTRY.get_sample_value("mport_intake_gate_closed") == 1
        held_before = metrics.INTAKE_HELD._value.get()
        placing = asyncio.create_task(post_order(kari, csrf, str(uuid.uuid4())))
        await asyncio.sleep(1.0)
        assert not placing.done(), "an order went in while the order-worker was behind"
        assert metrics.INTAKE_HELD._value.get() == held_before + 1

        await pipeline.queue.purge()  # the worker catches up
        response = await asyncio.wait_for(placing, 10)
        assert response.status_code == 202, response.text


async def test_an_order_held_back_for_too_long_is_refused_with_503_and_nothing_is_stored(
    make_portal: MakePortal,
) -> None:
    async with behind(make_portal, wait_s=0.5) as pipeline:
        kari, csrf = pipeline.kari, pipeline.csrf
        key = str(uuid.uuid4())
        refused_before = metrics.INTAKE_REFUSED._value.get()

        refused = await post_order(kari, csrf, key)
        assert metrics.INTAKE_REFUSED._value.get() == refused_before + 1

        assert refused.status_code == 503
        assert refused.headers["content-type"].startswith("application/problem+json")
        problem = refused.json()
        assert problem["type"] == "https://mport.no/problems/pipeline-busy"
        assert int(refused.headers["Retry-After"]) == problem["retry_after_s"] >= 1
        assert (await kari.get("/api/v1/orders")).json() == []

        # The same request again once the pipeline has caught up is simply the order.
        await pipeline.queue.purge()
        await until(pipeline.gate, is_open=True)
        assert REGISTRY.get_sample_value("mport_intake_gate_closed") == 0
        accepted = await post_order(kari, csrf, key)
        assert accepted.status_code == 202, accepted.text


async def test_a_queue_nobody_consumes_does_not_hold_orders_back(make_portal: MakePortal) -> None:
    portal = await gated_portal(make_portal, wait_s=30)
    gate = portal.app.state.intake_gate
    async with portal.client() as kari, order_worker_queue(portal.amqp_url, consuming=False):
        csrf = await sign_in(kari, "kari.nordmann@demo.no")
        await asyncio.sleep(0.5)  # ten readings of the gate
        assert gate.is_open
        response = await asyncio.wait_for(post_order(kari, csrf, str(uuid.uuid4())), 5)
        assert response.status_code == 202, response.text
