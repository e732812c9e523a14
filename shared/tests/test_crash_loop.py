"""A message that kills its worker every time (SIGKILL, not an exception) is dead-lettered by the
broker after the delivery limit (the policy in the definitions), with that reason, while the
messages behind it are handled: the queue keeps flowing."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import signal
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

import aio_pika
import pytest
from mport_shared.events import OrderSubmitted, envelop
from mport_shared.messaging.connection import confirming_channel, connect
from mport_shared.messaging.topology import declare_all
from mport_shared.ops.cli import main
from mport_shared.testing import RabbitServer

pytestmark = pytest.mark.integration

WORKER = Path(__file__).with_name("crashing_worker.py")
LIMIT = 2  # deliveries the broker allows beyond the first; small, so the test is quick


def _mport_ops(amqp_url: str, *argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(["--amqp-url", amqp_url, *argv], out=out, err=io.StringIO())
    return code, out.getvalue()


async def test_a_message_that_kills_the_worker_every_time_ends_among_the_dead_letters_with_its_reason(
    rabbit_server: RabbitServer, amqp_url: str, tmp_path: Path
) -> None:
    rabbit_server.set_delivery_limit(unquote(urlsplit(amqp_url).path[1:]), LIMIT)
    connection = await connect(amqp_url, name="test")
    channel = await confirming_channel(connection)
    await declare_all(channel)
    events = []
    for _ in range(4):
        order = uuid.uuid4()
        payload = OrderSubmitted(order_id=order, carrier_order_id="c", submitted_at=datetime.now(UTC))
        events.append(envelop(payload, source="/test", correlation_id=str(order)))
    poison, good = events[0], events[1:]
    for event in events:  # the poison first: the others wait behind it
        await channel.default_exchange.publish(
            aio_pika.Message(event.model_dump_json().encode(), type=event.type, message_id=event.id,
                             delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key="order-worker",
        )  # fmt: skip
    handled = tmp_path / "handled.txt"
    env = {**os.environ, "AMQP_URL": amqp_url, "HANDLED_FILE": str(handled),
           "POISON_ORDER_ID": str(poison.data.order_id)}  # type: ignore[attr-defined]  # fmt: skip

    async def done() -> bool:
        seen = handled.read_text().split() if handled.exists() else []
        # A channel of its own each time: a robust channel answers a passive declare of a queue it
        # declared before from its cache, with that first answer's message count.
        probe = await connection.channel()
        declared = await probe.declare_queue("order-worker.dead-letter", passive=True)
        await probe.close()
        return sorted(seen) == sorted(e.id for e in good) and declared.declaration_result.message_count == 1

    deaths = 0
    worker: asyncio.subprocess.Process | None = None
    try:
        while True:
            # Restarted each time it dies, as an orchestrator would.
            worker = await asyncio.create_subprocess_exec(
                sys.executable, str(WORKER), env=env, start_new_session=True
            )
            deadline = time.monotonic() + 30
            while worker.returncode is None and not await done():
                assert time.monotonic() < deadline, "the worker neither died nor finished"
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(worker.wait(), 0.1)
            if worker.returncode is None:
                break
            assert worker.returncode == -signal.SIGKILL
            deaths += 1
            assert deaths <= LIMIT + 1, "the broker kept redelivering the message that kills the worker"
        assert deaths == LIMIT + 1  # delivered 1 + LIMIT times, then dead-lettered
    finally:
        if worker is not None and worker.returncode is None:
            os.killpg(worker.pid, signal.SIGKILL)
            await worker.wait()

    code, out = await asyncio.to_thread(_mport_ops, amqp_url, "dlq", "list", "order-worker", "--json")
    assert code == 0
    [letter] = json.loads(out)
    assert letter["message_id"] == poison.id
    assert letter["dead_lettered_by"] == "broker"
    assert letter["reason"].startswith(
        "the broker's delivery limit: delivered to order-worker again and again"
    )
    assert letter["reason"].endswith("[delivery_limit]")
    assert letter["last_failure"] is not None
    code, table = await asyncio.to_thread(_mport_ops, amqp_url, "dlq", "list", "order-worker")
    assert code == 0
    assert "the worker died or lost its connection every time" in table
    await connection.close()
