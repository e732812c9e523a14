"""The live feed (each portal process's own copy of the status events, for the event streams)
comes back after its broker connection is lost, even when its queue's old name is still taken,
as it is for a while when the broker node the queue lived on was stopped."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from urllib.parse import quote, unquote, urlsplit

import aio_pika
import httpx
import pytest
from mport_shared.events import OrderSubmitted
from mport_shared.testing import RabbitServer, close_connections_named, wait_for

from .conftest import Portal, place_order, publish, sign_in, worker_event
from .test_pages import event_stream, served

pytestmark = pytest.mark.integration


async def test_the_live_feed_comes_back_under_a_new_name_when_its_old_one_is_still_taken(
    portal: Portal, rabbit_server: RabbitServer
) -> None:
    vhost = unquote(urlsplit(portal.amqp_url).path.lstrip("/"))
    api = httpx.AsyncClient(
        base_url=rabbit_server.api_url, auth=(rabbit_server.user, rabbit_server.password), timeout=10
    )

    async def live_queues() -> set[str]:
        listed = (await api.get(f"/queues/{quote(vhost, safe='')}")).json()
        return {q["name"] for q in listed if q["name"].startswith("portal-api.live.")}

    squatter = await aio_pika.connect(portal.amqp_url)
    async with (
        api,
        squatter,
        served(portal.app) as base_url,
        httpx.AsyncClient(base_url=base_url) as kari,
    ):
        csrf = await sign_in(kari, "kari.nordmann@demo.no")
        order = await place_order(kari, csrf, "nettvern")
        await wait_for(live_queues, what="the live feed's queue")
        [old] = await live_queues()

        # The broker drops the portal's connection; before the portal is back, the old queue name
        # is taken (exclusively, by another connection), as a record left on a stopped node keeps it.
        await close_connections_named(api, vhost, "portal-api")

        async def taken() -> bool:
            channel = await squatter.channel()
            try:
                await channel.declare_queue(old, exclusive=True, auto_delete=True, durable=False)
            except aio_pika.exceptions.ChannelClosed:  # still the portal's: locked
                return False
            return True

        await wait_for(taken, timeout_s=10, interval_s=0.01, what="the old live queue's name")

        async def back() -> bool:
            return bool((await live_queues()) - {old})

        await wait_for(back, timeout_s=30, what="a live feed queue under a new name")
        async with event_stream(kari) as events:
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
