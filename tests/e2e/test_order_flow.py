"""The whole system as processes: HTTP in, events through RabbitMQ, the carrier, status back."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from mport_shared.devstack import CARRIER_PATH, Stack
from mport_shared.testing import MakeStack, order_body, wait_for

pytestmark = pytest.mark.e2e


@contextlib.asynccontextmanager
async def signed_in(stack: Stack, email: str) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    async with httpx.AsyncClient(base_url=stack.url("portal-api"), timeout=10) as client:
        response = await client.post("/auth/dev-login", data={"email": email})
        response.raise_for_status()
        yield client, client.cookies["csrftoken"]


async def place(client: httpx.AsyncClient, csrf: str, product_code: str) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/orders",
        json=await order_body(client, product_code),
        headers={"X-CSRF-Token": csrf, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


async def final_state(client: httpx.AsyncClient, order_id: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def finished() -> bool:
        seen.update((await client.get(f"/api/v1/orders/{order_id}")).json())
        return seen["status"] in ("completed", "failed")

    await wait_for(finished, timeout_s=30, what=f"order {order_id} to finish")
    return seen


async def test_an_order_goes_from_post_to_completed_through_the_real_system(make_stack: MakeStack) -> None:
    stack = await make_stack()
    async with signed_in(stack, "kari.nordmann@demo.no") as (client, csrf):
        order = await place(client, csrf, "ekstra-data-15gb")
        done = await final_state(client, order["id"])
        me = (await client.get("/api/v1/me")).json()
    assert done["status"] == "completed"
    assert "ekstra-data-15gb" in [s["product_code"] for s in me["subscription"]["active_services"]]
    async with httpx.AsyncClient() as carrier:
        made = await carrier.get(
            f"{stack.url('carrier-simulator')}{CARRIER_PATH}/productOrder", params={"externalId": order["id"]}
        )
    assert [o["state"] for o in made.json()] == ["completed"]


async def test_a_carrier_failure_reaches_the_employee_as_a_failed_order_with_its_reason(
    make_stack: MakeStack,
) -> None:
    stack = await make_stack(extra_env={"carrier-simulator": {"CARRIER_SIM_FAILURE_RATE": "1"}})
    async with signed_in(stack, "kari.nordmann@demo.no") as (client, csrf):
        order = await place(client, csrf, "bedrift-total-e")
        done = await final_state(client, order["id"])
        me = (await client.get("/api/v1/me")).json()
    assert done["status"] == "failed"
    assert "simulated failure" in done["failure_reason"]
    assert me["subscription"]["plan"]["code"] == "bedrift-total-c"


async def test_kari_ends_min_sky_and_the_carrier_gets_a_delete_and_the_service_goes(
    make_stack: MakeStack,
) -> None:
    stack = await make_stack()
    async with signed_in(stack, "kari.nordmann@demo.no") as (client, csrf):
        started = await place(client, csrf, "min-sky-10gb")
        assert started["consent_id"] is not None  # 14,50 kr a month, accepted
        assert (await final_state(client, started["id"]))["status"] == "completed"
        response = await client.post(
            "/api/v1/orders",
            json={"product_code": "min-sky-10gb", "action": "delete"},
            headers={"X-CSRF-Token": csrf, "Idempotency-Key": str(uuid.uuid4())},
        )
        assert response.status_code == 202, response.text
        ending = response.json()
        done = await final_state(client, ending["id"])
        me = (await client.get("/api/v1/me")).json()
    assert (done["status"], done["action"], done["ends_order_id"]) == ("completed", "delete", started["id"])
    assert "min-sky-10gb" not in [s["product_code"] for s in me["subscription"]["active_services"]]
    async with httpx.AsyncClient() as carrier:
        made = await carrier.get(
            f"{stack.url('carrier-simulator')}{CARRIER_PATH}/productOrder",
            params={"externalId": ending["id"]},
        )
    [carrier_order] = made.json()
    assert carrier_order["state"] == "completed"
    assert [i["action"] for i in carrier_order["productOrderItem"]] == ["delete"]
