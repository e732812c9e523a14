"""The live feed: each portal process's own copy of the status events, for the event streams.

Its queue is a quorum queue, as every queue the events reach is: an exclusive classic queue lived
on one broker node, and when that node stopped, its record could stay behind, stopped and still
bound, and every status event the workers published was nacked for as long as it stayed."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import httpx
import pytest
from mport_shared.events import OrderSubmitted
from mport_shared.messaging.topology import EXCHANGE
from mport_shared.testing import RabbitServer, close_connections_named, wait_for
from portal_api.live import LIVE_QUEUE_EXPIRES_MS

from .conftest import Portal, place_order, publish, sign_in, worker_event
from .test_pages import event_stream, served

pytestmark = pytest.mark.integration


@asynccontextmanager
async def management(rabbit_server: RabbitServer, portal: Portal) -> AsyncIterator[_Vhost]:
    vhost = unquote(urlsplit(portal.amqp_url).path.lstrip("/"))
    async with httpx.AsyncClient(
        base_url=rabbit_server.api_url, auth=(rabbit_server.user, rabbit_server.password), timeout=10
    ) as api:
        yield _Vhost(api, vhost)


class _Vhost:
    """The management API's view of the portal's vhost."""

    def __init__(self, api: httpx.AsyncClient, vhost: str) -> None:
        self.api, self.name = api, vhost

    async def queues(self) -> dict[str, dict[str, Any]]:
        listed = (await self.api.get(f"/queues/{quote(self.name, safe='')}")).json()
        return {q["name"]: q for q in listed}

    async def live_queues(self) -> dict[str, dict[str, Any]]:
        return {n: q for n, q in (await self.queues()).items() if n.startswith("portal-api.live.")}

    async def bound_to_events(self) -> set[str]:
        bindings = (
            await self.api.get(f"/exchanges/{quote(self.name, safe='')}/{EXCHANGE}/bindings/source")
        ).json()
        return {b["destination"] for b in bindings if b["destination_type"] == "queue"}


async def test_every_queue_the_events_reach_is_a_quorum_queue(
    portal: Portal, rabbit_server: RabbitServer
) -> None:
    async with management(rabbit_server, portal) as vhost:
        await wait_for(vhost.live_queues, what="the live feed's queue")
        [(name, live)] = (await vhost.live_queues()).items()
        assert name in await vhost.bound_to_events()
        queues = await vhost.queues()
        assert {q: queues[q]["type"] for q in await vhost.bound_to_events()} == {
            q: "quorum" for q in await vhost.bound_to_events()
        }
        # Not exclusive, so the broker removes it for a process that was killed.
        assert live["arguments"]["x-expires"] == LIVE_QUEUE_EXPIRES_MS


async def test_the_live_feed_keeps_its_queue_across_a_reconnection_and_gets_what_came_meanwhile(
    portal: Portal, rabbit_server: RabbitServer
) -> None:
    async with (
        management(rabbit_server, portal) as vhost,
        served(portal.app) as base_url,
        httpx.AsyncClient(base_url=base_url) as kari,
    ):
        csrf = await sign_in(kari, "kari.nordmann@demo.no")
        order = await place_order(kari, csrf, "nettvern")
        await wait_for(vhost.live_queues, what="the live feed's queue")
        before = set(await vhost.live_queues())
        async with event_stream(kari) as events:
            # The broker drops the portal's connection (as a node going away does), and the worker's
            # event comes before the portal has reconnected (it waits a second before it tries).
            await close_connections_named(vhost.api, vhost.name, "portal-api")
            await publish(
                portal.amqp_url,
                worker_event(
                    OrderSubmitted(
                        order_id=uuid.UUID(order["id"]), carrier_order_id="c", submitted_at=datetime.now(UTC)
                    )
                ),
            )
            event = await events.next_order_event()
            assert (event["order_id"], event["status"]) == (order["id"], "submitted")
        assert set(await vhost.live_queues()) == before


async def test_a_portal_that_stops_removes_its_live_feed_queue(
    portal: Portal, rabbit_server: RabbitServer
) -> None:
    async with management(rabbit_server, portal) as vhost:
        await wait_for(vhost.live_queues, what="the live feed's queue")
        await portal.stop()
        assert await vhost.live_queues() == {}
