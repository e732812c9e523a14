"""The orders API against real PostgreSQL and RabbitMQ: acceptance, idempotency, refusals, security."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest
from mport_shared.db import create_engine
from mport_shared.messaging.connection import connect
from mport_shared.messaging.topology import ORDER_WORKER
from portal_api.models import Consent, Order, tables
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from .conftest import Portal, accepting, sign_in

pytestmark = pytest.mark.integration

KARI, HAKON = "kari.nordmann@demo.no", "hakon.hafell@demo.no"


async def order(
    client: httpx.AsyncClient, csrf: str, product_code: str, *, key: str | None = None, **details: str
) -> httpx.Response:
    return await client.post(
        "/api/v1/orders",
        json={"product_code": product_code, "details": details, **(await accepting(client, product_code))},
        headers={"X-CSRF-Token": csrf, "Idempotency-Key": key or str(uuid.uuid4())},
    )


async def stored(portal: Portal) -> tuple[int, int]:
    """How many orders and outbox rows the portal's database holds."""
    engine = create_engine(portal.database_url)
    try:
        async with engine.connect() as conn:
            orders = await conn.scalar(select(func.count()).select_from(Order))
            outbox = await conn.scalar(select(func.count()).select_from(tables.outbox))
    finally:
        await engine.dispose()
    return int(orders or 0), int(outbox or 0)


async def placed_events(portal: Portal) -> list[dict[str, object]]:
    """The OrderPlaced events waiting in order-worker's queue (nothing consumes it in these tests)."""
    connection = await connect(portal.amqp_url, name="probe")
    try:
        channel = await connection.channel()
        queue = await channel.get_queue(ORDER_WORKER.name, ensure=False)
        events = []
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            events.append(json.loads(message.body))
        return events
    finally:
        await connection.close()


async def test_me_and_catalog_show_the_subscription_and_what_the_policy_makes_the_employee_pay(
    portal: Portal,
) -> None:
    async with portal.client() as client:
        await sign_in(client, KARI)
        me = (await client.get("/api/v1/me")).json()
        catalog = {item["code"]: item for item in (await client.get("/api/v1/catalog")).json()}
    assert me["subscription"]["msisdn"] == "4791234567"
    assert me["subscription"]["plan"]["name"] == "Bedrift Total C (10 GB)"
    assert me["self_service_active"] is True
    assert catalog["ekstra-data-15gb"]["employee_pays_ore"] == 14_900  # the employee pays Ekstra Data
    assert catalog["ekstra-data-15gb"]["norway_only"] is True
    assert catalog["min-sky-25gb"]["employee_pays_ore"] == 2_450  # half of Min Sky
    assert catalog["nettvern"]["employee_pays_ore"] == 0  # on the employer
    assert catalog["datakort"]["allowed"] is False
    assert catalog["bedrift-total-e"]["employee_pays_ore"] == 49_900 - 39_900  # the difference above C
    assert catalog["bedrift-total-c"]["active"] is True


async def test_an_accepted_order_is_stored_with_its_event_published(portal: Portal) -> None:
    async with portal.client() as client:
        csrf = await sign_in(client, KARI)
        response = await order(client, csrf, "ekstra-data-15gb")
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "received"
    assert body["msisdn"] == "4791234567"
    assert body["carrier_product_code"] == "Surf-15GB"

    async def published() -> list[dict[str, object]]:
        for _ in range(100):
            if events := await placed_events(portal):
                return events
            await asyncio.sleep(0.05)
        return []

    events = await published()
    assert [e["data"]["order"]["order_id"] for e in events] == [body["id"]]  # type: ignore[index]
    assert events[0]["correlationid"] == body["id"]


async def test_an_order_whose_event_cannot_be_written_is_not_stored_at_all(portal: Portal) -> None:
    # The consent, the order and its OrderPlaced go in together or not at all: here the outbox
    # refuses the event (a trigger), as a full disk or a broken constraint would. Without a
    # transaction around them (a one-statement unit of work on PostgreSQL) that holds only
    # because they are one statement.
    engine = create_engine(portal.database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "CREATE FUNCTION refuse_events() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$ BEGIN RAISE EXCEPTION 'the outbox is refusing rows'; END $$"
                )
            )
            await conn.execute(
                text(
                    "CREATE TRIGGER refuse_events BEFORE INSERT ON outbox"
                    " FOR EACH ROW EXECUTE FUNCTION refuse_events()"
                )
            )
        async with portal.client() as client:
            csrf = await sign_in(client, KARI)
            with pytest.raises(DBAPIError, match="the outbox is refusing rows"):
                await order(client, csrf, "ekstra-data-1gb")
        async with engine.connect() as conn:
            consents = await conn.scalar(select(func.count()).select_from(Consent))
    finally:
        await engine.dispose()
    assert await stored(portal) == (0, 0)
    assert consents == 0


async def test_the_same_idempotency_key_returns_the_same_order_even_when_concurrent(portal: Portal) -> None:
    async with portal.client() as client:
        csrf = await sign_in(client, KARI)
        first = await order(client, csrf, "ekstra-data-1gb", key="retry-1")
        again = await order(client, csrf, "ekstra-data-1gb", key="retry-1")
        burst = await asyncio.gather(
            *(order(client, csrf, "ekstra-data-5gb", key="burst") for _ in range(10))
        )
        other = await order(client, csrf, "ekstra-data-50gb", key="retry-1")
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    assert {r.status_code for r in burst} == {202}
    assert len({r.json()["id"] for r in burst}) == 1
    assert other.status_code == 422  # the key was used for a different order
    assert other.json()["type"] == PROBLEMS + "idempotency-key-reused"
    assert await stored(portal) == (2, 2)


PROBLEMS = "https://mport.no/problems/"


@pytest.mark.parametrize(
    ("who", "product", "details", "status", "kind", "detail_part"),
    [
        (KARI, "no-such-thing", {}, 422, "unknown-product", "Unknown product"),
        (KARI, "bedrift-total-c", {}, 409, "already-active", "already your plan"),
        (KARI, "hoved-sim", {}, 409, "already-active", "already active"),
        (KARI, "datakort", {}, 403, "not-allowed-by-policy", "policy"),
        (HAKON, "ekstra-data-15gb", {}, 403, "self-service-not-activated", "Self-service is not activated"),
        (KARI, "aktiver-nytt-sim", {"icc": "8947080012345678901"}, 422, "invalid-icc", "check digit"),
        (KARI, "aktiver-nytt-sim", {"icc": "12345"}, 422, "invalid-icc", "19 or 20 digits"),
        (KARI, "bestill-sim", {"delivery_name": "Kari"}, 422, "invalid-order-details", "delivery_address"),
        (KARI, "ekstra-data-15gb", {"icc": "1"}, 422, "invalid-order-details", "Unexpected order details"),
    ],
)
async def test_refused_orders_get_a_clear_problem_and_store_nothing(
    portal: Portal, who: str, product: str, details: dict[str, str], status: int, kind: str, detail_part: str
) -> None:
    async with portal.client() as client:
        csrf = await sign_in(client, who)
        response = await order(client, csrf, product, **details)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == PROBLEMS + kind
    assert detail_part in response.json()["detail"]
    assert await stored(portal) == (0, 0)


async def test_a_valid_icc_is_accepted(portal: Portal) -> None:
    async with portal.client() as client:
        csrf = await sign_in(client, KARI)
        response = await order(client, csrf, "aktiver-nytt-sim", icc="8947 0800 1234 5678 900")
    assert response.status_code == 202, response.text
    assert response.json()["details"] == {"icc": "8947080012345678900"}


async def test_requests_without_key_csrf_or_session_are_refused(portal: Portal) -> None:
    async with portal.client() as client:
        anonymous = await client.get("/api/v1/me")
        csrf = await sign_in(client, KARI)
        no_key = await client.post(
            "/api/v1/orders", json={"product_code": "nettvern"}, headers={"X-CSRF-Token": csrf}
        )
        no_csrf = await client.post(
            "/api/v1/orders", json={"product_code": "nettvern"}, headers={"Idempotency-Key": "k"}
        )
        bad_body = await client.post(
            "/api/v1/orders", json={"product": 1}, headers={"X-CSRF-Token": csrf, "Idempotency-Key": "k2"}
        )
    assert anonymous.status_code == 401
    assert anonymous.json()["type"] == PROBLEMS + "not-signed-in"
    assert no_key.status_code == 400
    assert no_key.json()["type"] == PROBLEMS + "idempotency-key-required"
    assert "Idempotency-Key" in no_key.json()["detail"]
    assert no_csrf.status_code == 403
    assert no_csrf.json()["type"] == PROBLEMS + "csrf-failed"
    assert bad_body.status_code == 422
    assert bad_body.json()["type"] == PROBLEMS + "invalid-request"
    assert "product_code" in bad_body.json()["detail"]
    assert await stored(portal) == (0, 0)


async def test_another_employees_order_is_not_found(portal: Portal) -> None:
    async with portal.client() as kari, portal.client() as ingrid:
        csrf = await sign_in(kari, KARI)
        order_id = (await order(kari, csrf, "nettvern")).json()["id"]
        await sign_in(ingrid, "admin@demo.no")
        not_hers = await ingrid.get(f"/api/v1/orders/{order_id}")
        assert not_hers.status_code == 404
        assert not_hers.json()["type"] == PROBLEMS + "order-not-found"
        assert (await ingrid.get("/api/v1/orders")).json() == []
        assert (await kari.get(f"/api/v1/orders/{order_id}")).status_code == 200


async def test_dev_login_does_not_exist_outside_local_mode(make_portal: object) -> None:
    portal = await make_portal(
        PORTAL_MODE="production", SESSION_SECRET="x" * 40, VERIFICATION_CODE_SECRET="v" * 40
    )  # type: ignore[operator]
    async with portal.client() as client:
        response = await client.post("/auth/dev-login", data={"email": KARI})
    assert response.status_code == 404


async def test_a_retry_is_compared_with_the_order_as_cleaned_so_the_same_body_gets_the_same_order(
    portal: Portal,
) -> None:
    sim = {"delivery_name": "Kari  Nordmann", "delivery_address": "Storgata 1,\n0155  Oslo"}
    async with portal.client() as client:
        csrf = await sign_in(client, KARI)
        icc = await order(client, csrf, "aktiver-nytt-sim", key="icc", icc="8947 0800 1234 5678 900")
        icc_again = await order(client, csrf, "aktiver-nytt-sim", key="icc", icc="8947 0800 1234 5678 900")
        icc_other = await order(client, csrf, "aktiver-nytt-sim", key="icc", icc="8947 0000 0000 0000 003")
        shipped = await order(client, csrf, "bestill-sim", key="sim", **sim)
        shipped_again = await order(client, csrf, "bestill-sim", key="sim", **sim)
        shipped_elsewhere = await order(
            client, csrf, "bestill-sim", key="sim", **{**sim, "delivery_address": "Fjordveien 2, 5003 Bergen"}
        )
    assert icc.status_code == icc_again.status_code == 202, icc_again.text
    assert icc_again.json()["id"] == icc.json()["id"]
    assert icc.json()["details"] == {"icc": "8947080012345678900"}
    assert icc_other.status_code == 422
    assert "already used for a different order" in icc_other.json()["detail"]
    assert shipped.status_code == shipped_again.status_code == 202, shipped_again.text
    assert shipped_again.json()["id"] == shipped.json()["id"]
    assert shipped.json()["details"] == {
        "delivery_name": "Kari Nordmann",
        "delivery_address": "Storgata 1, 0155 Oslo",
    }
    assert shipped_elsewhere.status_code == 422
    assert await stored(portal) == (2, 2)
