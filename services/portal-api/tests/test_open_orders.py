"""What may be open at once, enforced by PostgreSQL: concurrent orders with fresh Idempotency-Keys
for one monthly add-on, one plan change or one SIM service make one order, the rest get a 409."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from datetime import UTC, datetime

import httpx
import pytest
from mport_shared.db import create_engine
from mport_shared.events import OrderCompleted, OrderPlaced
from mport_shared.testing import wait_for
from portal_api.models import tables
from sqlalchemy import select

from .conftest import Portal, accepting, publish, sign_in, snapshot, worker_event

pytestmark = pytest.mark.integration

KARI = "kari.nordmann@demo.no"
CONCURRENT = 20


async def post(client: httpx.AsyncClient, csrf: str, product_code: str, **details: str) -> httpx.Response:
    return await client.post(
        "/api/v1/orders",
        json={"product_code": product_code, "details": details, **(await accepting(client, product_code))},
        headers={"X-CSRF-Token": csrf, "Idempotency-Key": str(uuid.uuid4())},
    )


async def burst(portal: Portal, *products: str, **details: str) -> list[httpx.Response]:
    """CONCURRENT orders at once, each with a fresh key, cycling through `products`."""
    async with portal.client() as client:
        csrf = await sign_in(client, KARI)
        return await asyncio.gather(
            *(post(client, csrf, products[i % len(products)], **details) for i in range(CONCURRENT))
        )


async def placed_in_outbox(portal: Portal) -> Counter[str]:
    """How many OrderPlaced events the portal committed, by product."""
    engine = create_engine(portal.database_url)
    try:
        async with engine.connect() as conn:
            bodies = (
                await conn.scalars(
                    select(tables.outbox.c.body).where(tables.outbox.c.routing_key == OrderPlaced.event_type)
                )
            ).all()
    finally:
        await engine.dispose()
    return Counter(json.loads(body)["data"]["order"]["product_code"] for body in bodies)


def assert_one_accepted(responses: list[httpx.Response]) -> httpx.Response:
    by_status = Counter(r.status_code for r in responses)
    assert by_status == {202: 1, 409: CONCURRENT - 1}, [(r.status_code, r.text) for r in responses]
    for refused in (r for r in responses if r.status_code == 409):
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"] == "https://mport.no/problems/already-ordered"
        assert "on its way" in refused.json()["detail"]
    return next(r for r in responses if r.status_code == 202)


@pytest.mark.parametrize(
    ("product", "details"),
    [
        ("tvilling", {}),
        ("min-sky-50gb", {}),
        ("bedrift-total-e", {}),
        ("bestill-sim", {"delivery_name": "Kari Nordmann", "delivery_address": "Storgata 1, 0155 Oslo"}),
    ],
)
async def test_concurrent_orders_with_fresh_keys_make_one_order(
    portal: Portal, product: str, details: dict[str, str]
) -> None:
    responses = await burst(portal, product, **details)
    accepted = assert_one_accepted(responses)
    assert accepted.json()["product_code"] == product
    assert await placed_in_outbox(portal) == {product: 1}


async def test_concurrent_changes_to_two_different_plans_make_one_plan_change(portal: Portal) -> None:
    responses = await burst(portal, "bedrift-total-e", "bedrift-total-d")
    accepted = assert_one_accepted(responses)
    assert await placed_in_outbox(portal) == {accepted.json()["product_code"]: 1}


async def test_a_one_off_top_up_can_be_bought_again_and_again_even_at_once(portal: Portal) -> None:
    responses = await burst(portal, "ekstra-data-1gb")
    assert [r.status_code for r in responses] == [202] * CONCURRENT
    assert len({r.json()["id"] for r in responses}) == CONCURRENT
    assert await placed_in_outbox(portal) == {"ekstra-data-1gb": CONCURRENT}


async def test_a_completed_monthly_add_on_holds_its_place_and_a_failed_one_does_not(portal: Portal) -> None:
    async with portal.client() as client:
        csrf = await sign_in(client, KARI)
        first = await post(client, csrf, "tvilling")
        assert first.status_code == 202
        await publish(
            portal.amqp_url,
            worker_event(
                OrderCompleted(
                    order=snapshot(first.json()), carrier_order_id="c-1", completed_at=datetime.now(UTC)
                )
            ),
        )

        async def completed() -> bool:
            order = (await client.get(f"/api/v1/orders/{first.json()['id']}")).json()
            return bool(order["status"] == "completed")

        await wait_for(completed, what="the Tvilling order to complete")
        again = await post(client, csrf, "tvilling")
        plan = await post(client, csrf, "bedrift-total-d")
        other_plan = await post(client, csrf, "bedrift-total-e")
    assert again.status_code == 409
    assert again.json()["type"] == "https://mport.no/problems/already-active"
    assert again.json()["detail"] == "Tvilling is already active."
    assert plan.status_code == 202
    assert other_plan.status_code == 409
    assert other_plan.json()["type"] == "https://mport.no/problems/already-ordered"
    assert other_plan.json()["detail"] == (
        "A change to Bedrift Total D (25 GB) is already on its way; wait until it is done."
    )
