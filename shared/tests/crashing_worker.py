"""A tiny worker process for the crash-loop test: mport_shared's Consumer on the order-worker's
queue that dies (SIGKILL, no goodbye to the broker) on the message of order POISON_ORDER_ID, and
records every other message id it handles in HANDLED_FILE."""

from __future__ import annotations

import asyncio
import os
import signal

from mport_shared.events import Envelope, EventPayload, OrderSubmitted
from mport_shared.messaging.connection import confirming_channel, connect
from mport_shared.messaging.consumer import Consumer
from mport_shared.messaging.topology import ServiceQueue

QUEUE = ServiceQueue("order-worker", (OrderSubmitted.event_type,))


def _append(path: str, line: str) -> None:
    with open(path, "a", encoding="utf-8") as file:
        file.write(line + "\n")


async def main() -> None:
    poison = os.environ["POISON_ORDER_ID"]
    handled = os.environ["HANDLED_FILE"]

    async def handle(envelope: Envelope[EventPayload]) -> None:
        assert isinstance(envelope.data, OrderSubmitted)
        if str(envelope.data.order_id) == poison:
            os.kill(os.getpid(), signal.SIGKILL)
        await asyncio.to_thread(_append, handled, envelope.id)

    connection = await connect(os.environ["AMQP_URL"], name="crashing-worker")
    consumer = Consumer(
        channel=await confirming_channel(connection), queue=QUEUE,
        handlers={OrderSubmitted.event_type: handle}, retry_delays_ms=(50,), prefetch=1,
    )  # fmt: skip
    await consumer.start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
