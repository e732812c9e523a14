"""Operator's command: queue depths, dead letters with their reasons, replay and purge.

    python -m mport_shared.ops queues
    python -m mport_shared.ops dead-letters [SERVICE]
    python -m mport_shared.ops replay SERVICE [--id MESSAGE_ID ...]
    python -m mport_shared.ops purge SERVICE [--id MESSAGE_ID ...]

The broker is AMQP_URL; queue depths come from the management API (RABBITMQ_API_URL)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import aio_pika
import httpx
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from mport_shared.messaging.connection import confirming_channel, connect
from mport_shared.messaging.consumer import (
    ATTEMPT_HEADER,
    ATTEMPTS_HEADER,
    FAILED_AT_HEADER,
    ORIGINAL_ROUTING_KEY_HEADER,
    REASON_HEADER,
)
from mport_shared.messaging.topology import SERVICE_QUEUES, ServiceQueue


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    event_type: str
    reason: str
    attempts: int
    failed_at: str


def _header(message: AbstractIncomingMessage, name: str) -> str:
    value = (message.headers or {}).get(name)
    return value.decode() if isinstance(value, bytes) else str(value if value is not None else "")


def describe(message: AbstractIncomingMessage) -> DeadLetter:
    reason = _header(message, REASON_HEADER)
    if not reason and message.headers and "x-death" in message.headers:
        reason = "dead-lettered by the broker (delivery limit reached: the consumer kept crashing)"
    return DeadLetter(
        message_id=message.message_id or "?",
        event_type=message.type or _header(message, ORIGINAL_ROUTING_KEY_HEADER),
        reason=reason,
        attempts=int(_header(message, ATTEMPTS_HEADER) or 0),
        failed_at=_header(message, FAILED_AT_HEADER),
    )


async def _take_all(channel: AbstractChannel, queue_name: str) -> list[AbstractIncomingMessage]:
    """Take every message (unacked) so each can be acked or put back once decided."""
    queue = await channel.get_queue(queue_name, ensure=False)
    taken = []
    while (message := await queue.get(fail=False)) is not None:
        taken.append(message)
    return taken


async def dead_letters(amqp_url: str, service: ServiceQueue) -> list[DeadLetter]:
    connection = await connect(amqp_url, name="mport-ops")
    try:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=0)
        taken = await _take_all(channel, service.dead_letter)
        for message in taken:
            await message.nack(requeue=True)
        return [describe(m) for m in taken]
    finally:
        await connection.close()


async def replay(amqp_url: str, service: ServiceQueue, ids: set[str] | None = None) -> int:
    """Put dead letters back on the service's work queue (a fresh set of retries), then drop them
    from the dead-letter queue; returns how many were replayed."""
    return await _settle(amqp_url, service, ids, replay_to=service.name)


async def purge(amqp_url: str, service: ServiceQueue, ids: set[str] | None = None) -> int:
    return await _settle(amqp_url, service, ids, replay_to=None)


async def _settle(
    amqp_url: str, service: ServiceQueue, ids: set[str] | None, *, replay_to: str | None
) -> int:
    connection = await connect(amqp_url, name="mport-ops")
    count = 0
    try:
        channel = await confirming_channel(connection)
        for message in await _take_all(channel, service.dead_letter):
            if ids is not None and message.message_id not in ids:
                await message.nack(requeue=True)
                continue
            if replay_to is not None:
                headers: dict[str, Any] = {
                    k: v for k, v in (message.headers or {}).items() if not k.startswith("x-mport-")
                }
                headers[ATTEMPT_HEADER] = 1
                # The copy is confirmed on the work queue before the dead letter is removed.
                await channel.default_exchange.publish(
                    aio_pika.Message(
                        message.body, headers=headers, content_type=message.content_type,
                        message_id=message.message_id, correlation_id=message.correlation_id,
                        type=message.type, delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    ),
                    routing_key=replay_to,
                )  # fmt: skip
            await message.ack()
            count += 1
        return count
    finally:
        await connection.close()


def queue_depths(api_url: str, amqp_url: str) -> list[dict[str, Any]]:
    parts = urlsplit(amqp_url)
    vhost = unquote(parts.path[1:]) or "/"
    auth = (unquote(parts.username or "guest"), unquote(parts.password or "guest"))
    response = httpx.get(f"{api_url}/queues/{quote(vhost, safe='')}", auth=auth, timeout=10)
    response.raise_for_status()
    return [
        {
            "queue": q["name"],
            "type": q.get("type", "classic"),
            "messages": q.get("messages", 0),
            "unacked": q.get("messages_unacknowledged", 0),
            "consumers": q.get("consumers", 0),
            "publish_rate": q.get("message_stats", {}).get("publish_details", {}).get("rate", 0.0),
            "deliver_rate": q.get("message_stats", {}).get("deliver_get_details", {}).get("rate", 0.0),
        }
        for q in response.json()
    ]


def _service(name: str) -> ServiceQueue:
    for queue in SERVICE_QUEUES:
        if queue.name == name:
            return queue
    raise SystemExit(f"unknown service {name!r}; one of: {', '.join(q.name for q in SERVICE_QUEUES)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mport-ops", description=__doc__.splitlines()[0] if __doc__ else "")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("queues", help="depth, unacked and consumers of every queue")
    listing = commands.add_parser("dead-letters", help="dead-lettered messages with their reasons")
    listing.add_argument("service", nargs="?")
    for verb in ("replay", "purge"):
        sub = commands.add_parser(verb, help=f"{verb} dead letters of a service (all, or --id)")
        sub.add_argument("service")
        sub.add_argument("--id", action="append", dest="ids")
    args = parser.parse_args(argv)
    amqp_url = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    api_url = os.environ.get("RABBITMQ_API_URL", "http://127.0.0.1:15672/api")

    if args.command == "queues":
        rows = queue_depths(api_url, amqp_url)
        print(
            f"{'queue':34} {'type':8} {'ready':>7} {'unacked':>8} {'consumers':>9} {'in/s':>7} {'out/s':>7}"
        )
        for r in sorted(rows, key=lambda r: r["queue"]):
            print(
                f"{r['queue']:34} {r['type']:8} {r['messages']:>7} {r['unacked']:>8} {r['consumers']:>9} "
                f"{r['publish_rate']:>7.1f} {r['deliver_rate']:>7.1f}"
            )
        return 0
    if args.command == "dead-letters":
        services = [_service(args.service)] if args.service else list(SERVICE_QUEUES)
        total = 0
        for service in services:
            for letter in asyncio.run(dead_letters(amqp_url, service)):
                total += 1
                print(
                    f"{service.name:15} {letter.message_id:38} {letter.event_type:36} "
                    f"attempts={letter.attempts} at={letter.failed_at}\n{'':15} reason: {letter.reason}"
                )
        print(f"{total} dead letter(s)")
        return 0
    ids = set(args.ids) if args.ids else None
    action = replay if args.command == "replay" else purge
    done = asyncio.run(action(amqp_url, _service(args.service), ids))
    print(f"{args.command}: {done} message(s) from {_service(args.service).dead_letter}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
