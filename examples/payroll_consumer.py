"""An example payroll system reading mPort's salary deductions from its RabbitMQ queue.

    python examples/payroll_consumer.py amqp://payroll-system:PASSWORD@broker:5672/ deductions.db

It signs in as the broker user `payroll-system`, which may only consume from the durable queue
`payroll-system` (bound to mport.payroll.deduction_recorded.v1 and ..._reversed.v1). Delivery is
at least once: a message can come again after a crash or a lost connection. So:
  1. write the line in our own database, keyed by its `line_id` (a second copy changes nothing),
  2. commit,
  3. only then ack. A crash between 2 and 3 redelivers a message we already have: harmless.
A reversal is a line of its own (a negative amount) naming the line it undoes; lines never change.
Event schemas: docs/events/ (JSON Schema per event, AsyncAPI).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys

import aio_pika

QUEUE = "payroll-system"
EVENT_TYPES = {"mport.payroll.deduction_recorded.v1", "mport.payroll.deduction_reversed.v1"}

SCHEMA = """CREATE TABLE IF NOT EXISTS deductions (
    line_id TEXT PRIMARY KEY,          -- stable: the same charge always has the same id
    employee_number TEXT NOT NULL,
    wage_type TEXT NOT NULL,
    period TEXT NOT NULL,              -- YYYY-MM, the pay period
    amount_ore INTEGER NOT NULL,       -- deducted from salary; negative for a reversal
    reverses_line_id TEXT,
    text TEXT NOT NULL
)"""


def record(db: sqlite3.Connection, event: dict) -> bool:  # type: ignore[type-arg]
    """Store one line in its own transaction; False if we had it already (a redelivery)."""
    data = event["data"]
    line = data["line"]
    with db:  # commits on leaving the block, rolls back on an exception
        cursor = db.execute(
            "INSERT INTO deductions VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (line_id) DO NOTHING",
            (line["line_id"], line["employee_number"], line["wage_type"], line["period"],
             line["amount_ore"], data.get("reverses_line_id"), line["text"]),
        )  # fmt: skip
    return cursor.rowcount == 1


async def consume(amqp_url: str, database: str) -> None:
    db = sqlite3.connect(database)
    db.execute(SCHEMA)
    connection = await aio_pika.connect_robust(amqp_url)
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=20)
        # No declare: this user may not configure anything; mPort's services declared the queue.
        queue = await channel.get_queue(QUEUE, ensure=False)
        async with queue.iterator() as messages:
            async for message in messages:
                event = json.loads(message.body)
                if event.get("type") in EVENT_TYPES:
                    new = record(db, event)  # committed before the ack below
                    print(
                        ("recorded" if new else "already had"), event["data"]["line"]["line_id"], flush=True
                    )
                await message.ack()


if __name__ == "__main__":
    asyncio.run(consume(sys.argv[1], sys.argv[2]))
