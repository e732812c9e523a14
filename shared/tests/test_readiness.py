"""Readiness tells the truth and the outbox gauges stay current, against a real RabbitMQ and
PostgreSQL: a service whose connection the broker closes, whose consumer the broker cancels, or
whose broker is cut off answers /readyz 503 (and /healthz 200) until it has recovered, and its
outbox backlog rises while it cannot publish and falls when it can again."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, unquote, urlsplit

import httpx
import pytest
from asgi_lifespan import LifespanManager
from mport_shared.app import service_app
from mport_shared.events import Envelope, EventPayload, OrderSubmitted, envelop
from mport_shared.messaging.connection import confirming_channel, connect
from mport_shared.messaging.outbox import add_to_outbox
from mport_shared.messaging.tables import messaging_tables
from mport_shared.messaging.topology import ServiceQueue, declare_service_queue
from mport_shared.service import ServiceRuntime
from mport_shared.settings import ServiceSettings
from mport_shared.testing import (
    MakeDatabase,
    RabbitServer,
    TcpProxy,
    close_connections_named,
    proxied_url,
    wait_for,
)
from prometheus_client import REGISTRY
from sqlalchemy import MetaData, delete, insert

pytestmark = pytest.mark.integration


@dataclass
class Running:
    runtime: ServiceRuntime
    client: httpx.AsyncClient
    handled: list[str]

    async def ready(self) -> tuple[int, dict[str, str]]:
        answer = await self.client.get("/readyz")
        return answer.status_code, answer.json()["checks"]

    async def healthy(self) -> bool:
        return (await self.client.get("/healthz")).status_code == 200


def _event() -> Envelope[EventPayload]:
    oid = uuid.uuid4()
    payload = OrderSubmitted(order_id=oid, carrier_order_id="c", submitted_at=datetime.now(UTC))
    return envelop(payload, source="/test", correlation_id=str(oid))


@asynccontextmanager
async def running(amqp_url: str, database_url: str) -> AsyncIterator[Running]:
    """A service (its runtime in the shared app shape) with a work queue and an outbox."""
    metadata = MetaData()
    tables = messaging_tables(metadata)
    name = f"it-ready-{uuid.uuid4().hex[:6]}"
    settings = ServiceSettings(
        amqp_url=amqp_url,
        database_url=database_url,
        http_port=0,
        metrics_interval_s=0.1,
        outbox_poll_interval_s=0.1,
        retry_delays_ms=(50,),
    )
    runtime = ServiceRuntime(
        name=name, settings=settings, tables=tables, queue=ServiceQueue(name, (OrderSubmitted.event_type,))
    )
    async with runtime.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    handled: list[str] = []

    async def handle(envelope: Envelope[EventPayload]) -> None:
        handled.append(envelope.id)

    runtime.handlers[OrderSubmitted.event_type] = handle
    app = service_app(title=name, runtime=runtime)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://service") as client,
    ):
        yield Running(runtime, client, handled)


def _gauge(name: str, service: str) -> float:
    return REGISTRY.get_sample_value(name, {"service": service}) or 0.0


async def test_readyz_is_503_while_the_broker_has_closed_the_connection_or_cancelled_the_consumer(
    amqp_url: str, rabbit_server: RabbitServer, make_database: MakeDatabase
) -> None:
    vhost = unquote(urlsplit(amqp_url).path.lstrip("/"))
    api = httpx.AsyncClient(
        base_url=rabbit_server.api_url, auth=(rabbit_server.user, rabbit_server.password), timeout=10
    )
    async with api, running(amqp_url, await make_database(None)) as service:
        assert await service.ready() == (200, {"database": "ok", "broker": "ok", "consumer": "ok"})

        # 1. The broker closes the service's connection (as an operator, or a node going away, does).
        await close_connections_named(api, vhost, service.runtime.name)

        async def not_ready() -> bool:
            return (await service.ready())[0] == 503

        await wait_for(not_ready, timeout_s=5, interval_s=0.02, what="/readyz 503 after the broker closed")
        assert await service.healthy()

        async def ready() -> bool:
            return (await service.ready())[0] == 200

        await wait_for(ready, timeout_s=20, what="/readyz 200 after the connection recovered")

        # 2. The broker cancels the consumer (its queue deleted): connected, but not consuming.
        queue = service.runtime.queue
        assert queue is not None
        deleted = await api.delete(f"/queues/{quote(vhost, safe='')}/{quote(queue.name, safe='')}")
        assert deleted.status_code == 204, deleted.text
        await wait_for(not_ready, timeout_s=5, interval_s=0.02, what="/readyz 503 after the cancel")
        _, checks = await service.ready()
        assert checks == {"database": "ok", "broker": "ok", "consumer": "unavailable"}
        assert REGISTRY.get_sample_value("mport_ready", {"check": "consumer"}) == 0
        assert await service.healthy()

        # The queue is back (an operator re-applies the definitions); the consumer is restored.
        helper = await connect(amqp_url, name="test")
        try:
            await declare_service_queue(
                await confirming_channel(helper),
                queue,
                retry_delays_ms=service.runtime.settings.retry_delays_ms,
            )
        finally:
            await helper.close()
        await wait_for(ready, timeout_s=20, what="/readyz 200 once the consumer is back")
        assert REGISTRY.get_sample_value("mport_ready", {"check": "consumer"}) == 1

        # Ready means it really consumes again: an event published through its outbox is handled.
        event = _event()
        async with service.runtime.sessions() as session, session.begin():
            await add_to_outbox(session, service.runtime.tables.outbox, event)

        async def handled() -> bool:
            return event.id in service.handled

        await wait_for(handled, timeout_s=10, what="the event to be handled after recovery")


async def test_outbox_gauges_rise_while_the_broker_is_cut_off_and_fall_when_it_is_back(
    amqp_url: str, make_database: MakeDatabase
) -> None:
    parts = urlsplit(amqp_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5672)
    await proxy.start()
    try:
        async with running(proxied_url(amqp_url, proxy), await make_database(None)) as service:
            await _cut_and_restore(service, proxy)
    finally:
        await proxy.cut()


async def _cut_and_restore(service: Running, proxy: TcpProxy) -> None:
    name = service.runtime.name
    outbox = service.runtime.tables.outbox
    assert (await service.ready())[0] == 200

    await proxy.cut()
    try:

        async def not_ready() -> bool:
            status, checks = await service.ready()
            return status == 503 and checks["broker"] == "unavailable"

        await wait_for(not_ready, timeout_s=5, what="/readyz 503 with the broker cut off")
        assert await service.healthy()
        # What the portal's traffic probe asks: it takes orders into its outbox meanwhile.
        only_database = await service.client.get("/readyz", params={"only": "database"})
        assert (only_database.status_code, only_database.json()["checks"]) == (200, {"database": "ok"})
        assert (await service.client.get("/readyz", params={"only": "nope"})).status_code == 400
        events = [_event() for _ in range(3)]
        async with service.runtime.sessions() as session, session.begin():
            for event in events:
                await add_to_outbox(session, outbox, event)

        async def backlog_of_three() -> bool:
            return _gauge("mport_outbox_backlog", name) == 3

        await wait_for(backlog_of_three, timeout_s=5, what="the backlog gauge to show the 3 rows")
        first_age = _gauge("mport_outbox_oldest_age_seconds", name)

        async def older() -> bool:
            return _gauge("mport_outbox_oldest_age_seconds", name) >= first_age + 0.3

        await wait_for(older, timeout_s=5, what="the oldest row's age to keep growing")
        assert _gauge("mport_outbox_backlog", name) == 3  # still nothing published
    finally:
        await proxy.restore()  # also when the test failed, so that the service can stop

    async def drained() -> bool:
        return (
            _gauge("mport_outbox_backlog", name) == 0 and _gauge("mport_outbox_oldest_age_seconds", name) == 0
        )

    await wait_for(drained, timeout_s=20, what="the gauges to fall once the broker is back")

    async def ready() -> bool:
        return (await service.ready())[0] == 200

    await wait_for(ready, timeout_s=20, what="/readyz 200 after the broker came back")

    async def all_handled() -> bool:
        return all(e.id in service.handled for e in events)

    await wait_for(all_handled, timeout_s=10, what="the events published during the cut")
    published = REGISTRY.get_sample_value(
        "mport_messages_published_total", {"service": name, "event_type": OrderSubmitted.event_type}
    )
    assert published == 3

    # An event no queue takes is returned by the broker: a failed round, counted, and retried.
    failures = _gauge("mport_outbox_publish_failures_total", name)
    async with service.runtime.sessions() as session, session.begin():
        await session.execute(
            insert(outbox).values(
                message_id=str(uuid.uuid4()), routing_key="mport.nobody.v1", body="{}", headers={}
            )
        )

    async def failed() -> bool:
        return _gauge("mport_outbox_publish_failures_total", name) > failures

    await wait_for(failed, timeout_s=10, what="the unroutable event's failed round to be counted")
    async with service.runtime.sessions() as session, session.begin():
        await session.execute(delete(outbox))
