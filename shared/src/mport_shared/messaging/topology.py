"""The broker topology: one topic exchange, and per consuming service a quorum queue,
its retry (delay) queues and its dead-letter queue. Declared in code and exported as definitions."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractQueue

from mport_shared.events import (
    OrderCompleted,
    OrderFailed,
    OrderPlaced,
    OrderProgressed,
    OrderSubmitted,
    PayrollDeductionRecorded,
    PayrollDeductionReversed,
    VerificationCodeSent,
    VerificationDelivered,
    VerificationDeliveryFailed,
    VerificationRequested,
)

EXCHANGE = "mport.events"
# A message redelivered this often (a worker crashing on it each time) is dead-lettered by the broker.
DELIVERY_LIMIT = 20


@dataclass(frozen=True)
class ServiceQueue:
    """A consuming service's work queue and the event types routed to it."""

    name: str
    routing_keys: tuple[str, ...]

    @property
    def dead_letter(self) -> str:
        return f"{self.name}.dead-letter"

    def retry(self, delay_ms: int) -> str:
        return f"{self.name}.retry.{delay_ms}ms"


PORTAL_API = ServiceQueue(
    "portal-api",
    (
        OrderSubmitted.event_type,
        OrderProgressed.event_type,
        OrderCompleted.event_type,
        OrderFailed.event_type,
        VerificationCodeSent.event_type,
        VerificationDelivered.event_type,
        VerificationDeliveryFailed.event_type,
        PayrollDeductionRecorded.event_type,
        PayrollDeductionReversed.event_type,
    ),
)
ORDER_WORKER = ServiceQueue("order-worker", (OrderPlaced.event_type,))
SMS_WORKER = ServiceQueue("sms-worker", (VerificationRequested.event_type,))
PAYROLL_WORKER = ServiceQueue("payroll-worker", (OrderCompleted.event_type, OrderFailed.event_type))

SERVICE_QUEUES: tuple[ServiceQueue, ...] = (PORTAL_API, ORDER_WORKER, SMS_WORKER, PAYROLL_WORKER)

# Queues of systems outside mPort. The payroll system reads the deduction events from its own
# durable queue, as the broker user of the same name, which may only consume from it (it cannot
# declare, bind, publish or read anything else). Declared by every service, so no deduction
# event is unroutable before the payroll system first connects; no retry queues (it settles its
# own messages), a dead-letter queue for what it rejects or crashes on DELIVERY_LIMIT times.
PAYROLL_SYSTEM = ServiceQueue(
    "payroll-system", (PayrollDeductionRecorded.event_type, PayrollDeductionReversed.event_type)
)
EXTERNAL_QUEUES: tuple[ServiceQueue, ...] = (PAYROLL_SYSTEM,)


def external_user_permissions(queue: ServiceQueue, *, vhost: str = "/") -> dict[str, str]:
    """An outside system's broker permissions: consume from its own queue, and nothing else."""
    return {
        "user": queue.name,
        "vhost": vhost,
        "configure": "^$",
        "write": "^$",
        "read": f"^{queue.name}$",
    }


DEFAULT_RETRY_DELAYS_MS: tuple[int, ...] = (1_000, 5_000, 30_000)


def _work_queue_arguments(queue: ServiceQueue) -> dict[str, Any]:
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": DELIVERY_LIMIT,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": queue.dead_letter,
    }


def _retry_queue_arguments(queue: ServiceQueue, delay_ms: int) -> dict[str, Any]:
    # When the delay has passed the broker dead-letters the message back onto the work queue.
    return {
        "x-queue-type": "quorum",
        "x-message-ttl": delay_ms,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": queue.name,
    }


_DEAD_LETTER_ARGUMENTS: dict[str, Any] = {"x-queue-type": "quorum"}


def delivery_limit_policies(
    *, vhost: str = "/", delivery_limit: int = DELIVERY_LIMIT
) -> list[dict[str, Any]]:
    """Per work queue, a policy: after `delivery_limit` deliveries never settled (a worker dying
    on the message each time) the broker dead-letters it to the service's dead-letter queue,
    at least once (kept in the work queue until the dead-letter queue confirmed it; that needs
    `overflow: reject-publish`). The queues also carry `x-delivery-limit` as an argument (20, from
    before this policy); on RabbitMQ 3.10 a quorum queue takes the smaller of the two, so the
    policy can lower the limit of queues already declared, which an argument cannot (redeclaring
    a queue with other arguments is refused). Dead-letter and retry queues have none: listing
    dead letters requeues them, and that must never drop one."""
    return [
        {
            "name": f"mport-delivery-limit-{queue.name}",
            "vhost": vhost,
            "pattern": f"^{re.escape(queue.name)}$",
            "apply-to": "queues",
            "priority": 10,
            "definition": {
                "delivery-limit": delivery_limit,
                "dead-letter-exchange": "",
                "dead-letter-routing-key": queue.dead_letter,
                "dead-letter-strategy": "at-least-once",
                "overflow": "reject-publish",
            },
        }
        for queue in (*SERVICE_QUEUES, *EXTERNAL_QUEUES)
    ]


async def declare_exchange(channel: AbstractChannel) -> aio_pika.abc.AbstractExchange:
    return await channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)


async def declare_service_queue(
    channel: AbstractChannel,
    queue: ServiceQueue,
    *,
    retry_delays_ms: tuple[int, ...] = (),
) -> AbstractQueue:
    """Declare a service's work and dead-letter queues (and retry queues, if given), and bind."""
    exchange = await declare_exchange(channel)
    await channel.declare_queue(queue.dead_letter, durable=True, arguments=_DEAD_LETTER_ARGUMENTS)
    for delay in retry_delays_ms:
        await channel.declare_queue(
            queue.retry(delay), durable=True, arguments=_retry_queue_arguments(queue, delay)
        )
    work = await channel.declare_queue(queue.name, durable=True, arguments=_work_queue_arguments(queue))
    for key in queue.routing_keys:
        await work.bind(exchange, routing_key=key)
    return work


async def declare_all(channel: AbstractChannel) -> None:
    """Declare every work queue, so no published event is unroutable even before its consumer starts.

    Each consumer declares its own retry queues, since only it knows its retry delays."""
    for queue in (*SERVICE_QUEUES, *EXTERNAL_QUEUES):
        await declare_service_queue(channel, queue)


def definitions(
    *, vhost: str = "/", retry_delays_ms: tuple[int, ...] = DEFAULT_RETRY_DELAYS_MS
) -> dict[str, Any]:
    """The same topology as a RabbitMQ definitions document (for `rabbitmqctl import_definitions`)."""
    queues: list[dict[str, Any]] = []
    bindings: list[dict[str, Any]] = []

    def bind(queue: ServiceQueue) -> None:
        bindings.extend(
            {
                "source": EXCHANGE,
                "vhost": vhost,
                "destination": queue.name,
                "destination_type": "queue",
                "routing_key": key,
                "arguments": {},
            }
            for key in queue.routing_keys
        )

    def add_queue(name: str, arguments: dict[str, Any]) -> None:
        queues.append(
            {
                "name": name,
                "vhost": vhost,
                "durable": True,
                "auto_delete": False,
                "arguments": arguments,
            }
        )

    for queue in SERVICE_QUEUES:
        add_queue(queue.name, _work_queue_arguments(queue))
        for delay in retry_delays_ms:
            add_queue(queue.retry(delay), _retry_queue_arguments(queue, delay))
        add_queue(queue.dead_letter, _DEAD_LETTER_ARGUMENTS)
        bind(queue)
    for queue in EXTERNAL_QUEUES:
        add_queue(queue.name, _work_queue_arguments(queue))
        add_queue(queue.dead_letter, _DEAD_LETTER_ARGUMENTS)
        bind(queue)

    return {
        "vhosts": [{"name": vhost}],
        # An outside system's user has no password here: it cannot sign in until the operator
        # gives it one (README: the payroll system's user), and no password is kept in git.
        "users": [
            {
                "name": q.name,
                "password_hash": "",
                "hashing_algorithm": "rabbit_password_hashing_sha256",
                "tags": "",
            }
            for q in EXTERNAL_QUEUES
        ],
        "permissions": [external_user_permissions(q, vhost=vhost) for q in EXTERNAL_QUEUES],
        "exchanges": [
            {
                "name": EXCHANGE,
                "vhost": vhost,
                "type": "topic",
                "durable": True,
                "auto_delete": False,
                "internal": False,
                "arguments": {},
            }
        ],
        "queues": queues,
        "bindings": bindings,
        "policies": delivery_limit_policies(vhost=vhost),
    }


def main() -> None:
    print(json.dumps(definitions(), indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
