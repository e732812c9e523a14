"""The broker goes away mid-flow for every service, and comes back: nothing lost, nothing doubled."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx
import pytest
from mport_shared.devstack import CARRIER_PATH, Stack, StackConfig, free_port
from mport_shared.testing import MakeDatabase, TcpProxy, order_body, proxied_url, wait_for

pytestmark = pytest.mark.e2e

MIGRATIONS = {
    "portal-api": "portal_api:migrations",
    "order-worker": "order_worker:migrations",
    "sms-worker": "sms_worker:migrations",
    "payroll-worker": "payroll_worker:migrations",
}


@pytest.fixture
async def proxy(amqp_url: str) -> AsyncIterator[TcpProxy]:
    parts = urlsplit(amqp_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5672)
    await proxy.start()
    yield proxy
    await proxy.cut()


@pytest.fixture
async def stack(amqp_url: str, make_database: MakeDatabase, proxy: TcpProxy) -> AsyncIterator[Stack]:
    """The whole system, every service reaching the broker only through the proxy."""
    names = (
        "portal-api",
        "carrier-simulator",
        "identity-simulator",
        "order-worker",
        "sms-worker",
        "payroll-worker",
    )
    stack = Stack(
        StackConfig(
            amqp_url=proxied_url(amqp_url, proxy),
            database_urls={n: await make_database(s) for n, s in MIGRATIONS.items()},
            ports={n: free_port() for n in names},
            extra_env={
                "portal-api": {"PORTAL_MODE": "local"},
                "carrier-simulator": {"CARRIER_SIM_LATENCY_MS": "1500"},
            },
        )
    )
    await stack.seed_portal()
    await stack.start()
    yield stack
    await stack.stop()


async def test_orders_placed_before_during_and_after_a_broker_outage_all_complete_once(
    stack: Stack, proxy: TcpProxy
) -> None:
    async with httpx.AsyncClient(base_url=stack.url("portal-api"), timeout=10) as client:
        await client.post("/auth/dev-login", data={"email": "kari.nordmann@demo.no"})
        csrf = client.cookies["csrftoken"]

        async def place() -> str:
            response = await client.post(
                "/api/v1/orders",
                json=await order_body(client, "ekstra-data-1gb"),
                headers={"X-CSRF-Token": csrf, "Idempotency-Key": str(uuid.uuid4())},
            )
            assert response.status_code == 202, response.text
            order_id: str = response.json()["id"]
            return order_id

        before = [await place() for _ in range(3)]
        await asyncio.sleep(0.5)  # these are now with the worker, waiting for the slow carrier
        await proxy.cut()
        during = [await place() for _ in range(3)]  # accepted: they wait in the outbox
        await asyncio.sleep(2.0)
        await proxy.restore()
        after = [await place() for _ in range(2)]
        orders = before + during + after

        async def all_completed() -> bool:
            listed = {o["id"]: o["status"] for o in (await client.get("/api/v1/orders")).json()}
            return all(listed.get(o) == "completed" for o in orders)

        await wait_for(all_completed, timeout_s=60, what="every order to complete after the outage")

    async with httpx.AsyncClient(base_url=stack.url("carrier-simulator") + CARRIER_PATH) as carrier:
        for order_id in orders:
            made = (await carrier.get("/productOrder", params={"externalId": order_id})).json()
            assert len(made) == 1, f"order {order_id} reached the carrier {len(made)} times"
