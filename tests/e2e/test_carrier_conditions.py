"""The whole system with a carrier as real ones are: slow, losing half of its notifications, and
away for a while in the middle. Every order still completes once, and the employee sees it live."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from mport_shared.devstack import CARRIER_PATH, Stack
from mport_shared.testing import MakeStack, order_body, wait_for

pytestmark = pytest.mark.e2e

ORDERS = 50
# Minutes and hours with a real carrier; seconds here, in the same proportions.
CARRIER = {
    "CARRIER_SIM_LATENCY_MS": "6000",
    "CARRIER_SIM_LATENCY_JITTER_MS": "4000",
    "CARRIER_SIM_NOTIFICATION_DROP_RATE": "0.5",
    "CARRIER_SIM_NOTIFICATION_RETRY_INITIAL_DELAY_S": "0.2",
    "CARRIER_SIM_NOTIFICATION_RETRY_MAX_DELAY_S": "1",
}
WORKER = {
    "SUBMIT_RETRY_FIRST_S": "0.5",
    "SUBMIT_RETRY_MAX_S": "2",
    "CHECK_FIRST_S": "3",
    "CHECK_MAX_S": "6",
    "CHECK_AFTER_EXPECTED_S": "2",
    "RECONCILE_POLL_S": "0.5",
}


@asynccontextmanager
async def signed_in(stack: Stack, email: str) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    async with httpx.AsyncClient(base_url=stack.url("portal-api"), timeout=30) as client:
        (await client.post("/auth/dev-login", data={"email": email})).raise_for_status()
        yield client, client.cookies["csrftoken"]


async def follow_live(client: httpx.AsyncClient, seen: dict[str, list[str]], ready: asyncio.Event) -> None:
    """What the page is told: every `order` event of the employee's stream, by order."""
    async with client.stream("GET", "/api/v1/events", timeout=None) as stream:
        event = ""
        async for line in stream.aiter_lines():
            if line.startswith("event:"):
                event = line.removeprefix("event:").strip()
                if event == "ready":
                    ready.set()
            elif line.startswith("data:") and event == "order":
                update = json.loads(line.removeprefix("data:"))
                seen.setdefault(update["order_id"], []).append(update["status"])


async def test_fifty_orders_through_a_slow_forgetful_carrier_that_goes_away_all_complete_once(
    make_stack: MakeStack,
) -> None:
    stack = await make_stack(extra_env={"carrier-simulator": CARRIER, "order-worker": WORKER})
    live: dict[str, list[str]] = {}
    async with signed_in(stack, "kari.nordmann@demo.no") as (client, csrf):
        ready = asyncio.Event()
        watcher = asyncio.create_task(follow_live(client, live, ready))
        await asyncio.wait_for(ready.wait(), 10)
        products = ["tvilling", "bedrift-total-e"] + ["ekstra-data-1gb"] * (ORDERS - 2)
        order_ids: list[str] = []

        async def place(product_code: str) -> None:
            response = await client.post(
                "/api/v1/orders",
                json=await order_body(client, product_code),
                headers={"X-CSRF-Token": csrf, "Idempotency-Key": str(uuid.uuid4())},
            )
            assert response.status_code == 202, response.text
            order_ids.append(response.json()["id"])

        await asyncio.gather(*(place(p) for p in products[: ORDERS // 2]))
        async with httpx.AsyncClient(base_url=stack.url("carrier-simulator")) as carrier:
            (await carrier.put("/simulator/config", json={"down": True})).raise_for_status()
            # Orders placed while the carrier is away wait with the order-worker, not in a
            # dead-letter queue.
            await asyncio.gather(*(place(p) for p in products[ORDERS // 2 :]))
            await asyncio.sleep(5)
            (await carrier.put("/simulator/config", json={"down": False})).raise_for_status()

        final: dict[str, dict[str, Any]] = {}

        async def all_finished() -> bool:
            response = await client.get("/api/v1/orders", params={"limit": 100})  # the most a page holds
            for order in response.json():
                final[order["id"]] = order
            return all(final.get(o, {}).get("status") in ("completed", "failed") for o in order_ids)

        await wait_for(all_finished, timeout_s=90, interval_s=0.5, what=f"{ORDERS} orders to finish")

        async def all_seen_live() -> bool:
            return all("completed" in live.get(o, []) for o in order_ids)

        await wait_for(all_seen_live, timeout_s=10, what="every completion on the page's event stream")
        watcher.cancel()

    assert sorted(final[o]["status"] for o in order_ids) == ["completed"] * ORDERS
    async with httpx.AsyncClient(base_url=f"{stack.url('carrier-simulator')}{CARRIER_PATH}") as carrier:
        made = await asyncio.gather(
            *(carrier.get("/productOrder", params={"externalId": o}) for o in order_ids)
        )
        hubs = (await carrier.get(f"{stack.url('carrier-simulator')}/simulator/hubs")).json()
    assert [len(response.json()) for response in made] == [1] * ORDERS
    assert sum(hub["dropped"] for hub in hubs) > 0  # the carrier did lose notifications
    for order_id in order_ids:
        assert live[order_id].count("completed") == 1, live[order_id]
