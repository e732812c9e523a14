"""The mobile policy, consent and Avslutt on real PostgreSQL and RabbitMQ: GET/PUT
/api/v1/admin/policy (Ingrid's company only; 403 for Kari; Per's changes stay in Fjord Logistikk),
the consent stored with the order and in its published OrderPlaced, and an Avslutt whose
completion removes the add-on from the subscription."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from mport_shared.db import create_engine
from mport_shared.events import OrderCompleted, OrderPlaced
from portal_api.catalog.policy import DEMO_POLICY, FJORD_POLICY
from portal_api.models import Consent, Order, tables
from portal_api.seed import INGRID, KARI, PER
from sqlalchemy import select

from .conftest import Portal, accepting, place_order, publish, sign_in, snapshot, worker_event
from .test_status_events import wait_status

pytestmark = pytest.mark.integration

PROBLEMS = "https://mport.no/problems/"
POLICY = "/api/v1/admin/policy"
DIALOG = "Dette medfører lønnstrekk: 149,00 kr."


async def signed(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    return {"X-CSRF-Token": await sign_in(client, email)}


async def published_placed(portal: Portal) -> dict[str, dict[str, Any]]:
    """The OrderPlaced snapshots the portal committed to its outbox, by order id."""
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
    orders = [json.loads(body)["data"]["order"] for body in bodies]
    return {o["order_id"]: o for o in orders}


async def post_order(
    client: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any]
) -> httpx.Response:
    return await client.post(
        "/api/v1/orders", json=body, headers={**headers, "Idempotency-Key": str(uuid.uuid4())}
    )


# ---- The policy API ---------------------------------------------------------------------------


async def test_the_administrator_reads_and_changes_the_policy_for_new_orders_with_an_audit_entry(
    portal: Portal,
) -> None:
    async with portal.client() as admin, portal.client() as kari:
        ingrid = await signed(admin, INGRID.email)
        k = await signed(kari, KARI.email)
        before = (await admin.get(POLICY)).json()
        assert before == DEMO_POLICY.model_dump(mode="json")
        # Kari's page was loaded with the old price: she accepted 149,00 kr.
        old = {"amount_ore": 14_900, "text": DIALOG}
        placed_before = await place_order(kari, k["X-CSRF-Token"], "ekstra-data-15gb")
        changed = {
            **before,
            "rules": {**before["rules"], "ekstra_data": {"payer": "employee", "employee_share_ore": 5_000}},
            "wage_types": {**before["wage_types"], "one_off_addon": "7111"},
        }
        put = await admin.put(POLICY, json=changed, headers=ingrid)
        assert put.status_code == 200, put.text
        assert (await admin.get(POLICY)).json()["rules"]["ekstra_data"]["employee_share_ore"] == 5_000
        stale = await post_order(kari, k, {"product_code": "ekstra-data-15gb", "accept_deduction": old})
        assert stale.status_code == 409
        assert (stale.json()["type"], stale.json()["amount_ore"]) == (PROBLEMS + "deduction-changed", 5_000)
        new = await post_order(
            kari, k, {"product_code": "ekstra-data-15gb", **(await accepting(kari, "ekstra-data-15gb"))}
        )
        assert new.status_code == 202, new.text
        earlier = (await kari.get(f"/api/v1/orders/{placed_before['id']}")).json()
        log = (await admin.get("/api/v1/admin/audit-log")).json()
    assert (new.json()["employee_charge_ore"], earlier["employee_charge_ore"]) == (5_000, 14_900)
    snapshots = await published_placed(portal)
    assert (snapshots[new.json()["id"]]["wage_type"], snapshots[placed_before["id"]]["wage_type"]) == (
        "7111",
        "7110",
    )
    [entry] = [e for e in log if e["action"] == "policy.updated"]
    assert entry["before"] == {
        "rules": {
            "ekstra_data": {"payer": "employee", "employee_share_percent": None, "employee_share_ore": None}
        },
        "wage_types": {"one_off_addon": "7110"}
        | {k: v for k, v in before["wage_types"].items() if k != "one_off_addon"},
    }
    assert entry["after"]["rules"] == {
        "ekstra_data": {"payer": "employee", "employee_share_percent": None, "employee_share_ore": 5_000}
    }


async def test_an_employee_may_neither_read_nor_change_the_policy(portal: Portal) -> None:
    async with portal.client() as client:
        k = await signed(client, KARI.email)
        read = await client.get(POLICY)
        write = await client.put(POLICY, json={}, headers=k)
    for response in (read, write):
        assert response.status_code == 403
        assert response.json()["type"] == PROBLEMS + "not-an-administrator"


async def test_another_companys_administrator_reads_and_changes_only_their_own(portal: Portal) -> None:
    async with portal.client() as fjord, portal.client() as demo:
        per = await signed(fjord, PER.email)
        await signed(demo, INGRID.email)
        assert (await fjord.get(POLICY)).json() == FJORD_POLICY.model_dump(mode="json")
        everything_free = await fjord.put(POLICY, json={"plan_covered_up_to": "bedrift-total-e"}, headers=per)
        assert everything_free.status_code == 200, everything_free.text
        demo_policy = (await demo.get(POLICY)).json()
        demo_log = (await demo.get("/api/v1/admin/audit-log")).json()
    assert demo_policy == DEMO_POLICY.model_dump(mode="json")
    assert demo_log == []


@pytest.mark.parametrize(
    ("body", "kind", "where"),
    [
        ({"rules": {"roaming": {"payer": "employee"}}}, "invalid-policy", ["body", "rules", "roaming"]),
        ({"plan_covered_up_to": "nettvern"}, "invalid-policy", ["body", "plan_covered_up_to"]),
        ({"wage_types": {"sim": "x"}}, "invalid-policy", ["body", "wage_types", "sim"]),
        ({"rules": {"tvilling": {"payer": "whoever"}}}, "invalid-request",
         ["body", "rules", "tvilling", "payer"]),
        ({"rules": {"tvilling": {"payer": "employee", "employee_share_percent": 150}}}, "invalid-request",
         ["body", "rules", "tvilling", "employee_share_percent"]),
        ({"colour": "blue"}, "invalid-request", ["body", "colour"]),
    ],
)  # fmt: skip
async def test_a_bad_policy_is_a_422_naming_what_is_wrong_and_changes_nothing(
    portal: Portal, body: dict[str, Any], kind: str, where: list[str]
) -> None:
    async with portal.client() as client:
        ingrid = await signed(client, INGRID.email)
        response = await client.put(POLICY, json=body, headers=ingrid)
        after = (await client.get(POLICY)).json()
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == PROBLEMS + kind
    assert where in [e["loc"] for e in response.json()["errors"]]
    assert after == DEMO_POLICY.model_dump(mode="json")


# ---- Consent ----------------------------------------------------------------------------------


async def test_the_consent_is_stored_with_the_order_and_travels_in_its_order_placed(portal: Portal) -> None:
    async with portal.client() as client:
        k = await signed(client, KARI.email)
        missing = await post_order(client, k, {"product_code": "ekstra-data-15gb"})
        placed = await post_order(
            client,
            k,
            {"product_code": "ekstra-data-15gb", "accept_deduction": {"amount_ore": 14_900, "text": DIALOG}},
        )
        free = await post_order(client, k, {"product_code": "nettvern"})
    assert missing.status_code == 422
    assert (missing.json()["type"], missing.json()["amount_ore"]) == (
        PROBLEMS + "deduction-not-accepted",
        14_900,
    )
    assert placed.status_code == 202, placed.text
    assert free.status_code == 202, free.text
    order_id = placed.json()["id"]
    async with portal.app.state.runtime.sessions() as session:
        order = await session.get(Order, uuid.UUID(order_id))
        assert order is not None
        assert order.consent_id is not None
        consent = await session.get(Consent, order.consent_id)
        assert consent is not None
        free_order = await session.get(Order, uuid.UUID(free.json()["id"]))
        assert free_order is not None
    assert (consent.employee_id, consent.amount_ore, consent.billing, consent.text) == (
        KARI.id,
        14_900,
        "one_off",
        DIALOG,
    )
    assert placed.json()["consent_id"] == str(consent.id)
    assert (free_order.consent_id, free.json()["consent_id"]) == (None, None)
    event = (await published_placed(portal))[order_id]
    assert event["consent"]["consent_id"] == str(consent.id)
    assert (event["consent"]["text"], event["consent"]["amount_ore"]) == (DIALOG, 14_900)
    assert (event["product_name"], event["wage_type"], event["action"]) == ("Ekstra Data 15GB", "7110", "add")


# ---- Avslutt ----------------------------------------------------------------------------------


async def test_avslutt_places_a_delete_order_and_its_completion_removes_the_service(portal: Portal) -> None:
    async with portal.client() as client:
        k = await signed(client, KARI.email)
        started = await place_order(client, k["X-CSRF-Token"], "min-sky-10gb")
        now = datetime.now(UTC)
        await publish(
            portal.amqp_url,
            worker_event(OrderCompleted(order=snapshot(started), carrier_order_id="c-1", completed_at=now)),
        )
        await wait_status(client, started["id"], "completed")
        # Two Avslutt at once: one ending is placed, the other refused.
        both = await asyncio.gather(
            *(post_order(client, k, {"product_code": "min-sky-10gb", "action": "delete"}) for _ in range(2))
        )
        assert sorted(r.status_code for r in both) == [202, 409], [r.text for r in both]
        ending = next(r for r in both if r.status_code == 202).json()
        refused = next(r for r in both if r.status_code == 409).json()
        assert refused["type"] == PROBLEMS + "service-already-ending"
        assert (ending["action"], ending["ends_order_id"], ending["employee_charge_ore"]) == (
            "delete",
            started["id"],
            0,
        )
        event = (await published_placed(portal))[ending["id"]]
        assert (event["action"], event["ends_order_id"], event["carrier_product_code"]) == (
            "delete",
            started["id"],
            "Sky-10GB",
        )
        while_ending = (await client.get("/api/v1/me")).json()
        delete_snapshot = snapshot(ending).model_copy(update={"action": "delete"})
        await publish(
            portal.amqp_url,
            worker_event(OrderCompleted(order=delete_snapshot, carrier_order_id="c-2", completed_at=now)),
        )
        await wait_status(client, ending["id"], "completed")
        after = (await client.get("/api/v1/me")).json()
        again = await place_order(client, k["X-CSRF-Token"], "min-sky-10gb")  # may be ordered anew
        not_active = await post_order(client, k, {"product_code": "nettvern", "action": "delete"})
    active = lambda me: [s["product_code"] for s in me["subscription"]["active_services"]]  # noqa: E731
    assert "min-sky-10gb" in active(while_ending)
    assert "min-sky-10gb" not in active(after)
    assert again["status"] == "received"
    assert not_active.status_code == 409
    assert not_active.json()["type"] == PROBLEMS + "service-not-active"
