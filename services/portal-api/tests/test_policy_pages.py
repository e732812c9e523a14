"""The administrator's page Retningslinjer (the policy as a form, saved through the policy use
case, refused as a page with what is wrong) and the Avslutt confirmation on Abonnement."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from mport_shared.events import OrderCompleted
from portal_api.seed import INGRID, KARI

from .conftest import Portal, place_order, publish, sign_in, snapshot, worker_event
from .test_admin_pages import form_post, page
from .test_status_events import wait_status

pytestmark = pytest.mark.integration

PATH = "/admin/retningslinjer"


async def test_ingrid_sets_a_fixed_share_and_kari_sees_the_new_deduction(portal: Portal) -> None:
    async with portal.client() as admin, portal.client() as kari:
        csrf = await sign_in(admin, INGRID.email)
        await sign_in(kari, KARI.email)
        html = await page(admin, PATH)
        assert "Retningslinjer for mobilordningen" in html.text
        row = html.one("tr", **{"data-category": "ekstra_data"})
        assert "Ekstra Data 50GB" in row.text
        saved = await form_post(
            admin,
            PATH,
            csrf,
            **{"payer.ekstra_data": "fixed", "fixed.ekstra_data": "25,00", "wage_type.sim": "7141"},
        )
        assert saved.status_code == 303, saved.text
        assert "Retningslinjene er lagret." in (await page(admin, saved.headers["location"])).text
        policy = (await admin.get("/api/v1/admin/policy")).json()
        catalog = {p["code"]: p for p in (await kari.get("/api/v1/catalog")).json()}
        log = await page(admin, "/admin/endringslogg")
    assert policy["rules"]["ekstra_data"] == {
        "payer": "employee",
        "employee_share_percent": None,
        "employee_share_ore": 2_500,
    }
    assert policy["rules"]["min_sky"] == {
        "payer": "employee",
        "employee_share_percent": 50,
        "employee_share_ore": None,
    }
    assert policy["wage_types"]["sim"] == "7141"
    assert catalog["ekstra-data-15gb"]["employee_pays_ore"] == 2_500
    assert "Lønnsarter" in log.text


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        (
            {"payer.ekstra_data": "percent", "percent.ekstra_data": "150"},
            "En andel i prosent er et helt tall",
        ),
        ({"payer.ekstra_data": "fixed", "fixed.ekstra_data": "mye"}, "Et fast beløp skrives i kroner"),
        ({"wage_type.sim": "71-40"}, "wage_types.sim: a wage type is 1 to 6 digits"),
        ({"plan_covered_up_to": "nettvern"}, "plan_covered_up_to: "),
    ],
)
async def test_a_bad_form_is_the_page_again_with_what_is_wrong(
    portal: Portal, fields: dict[str, str], words: str
) -> None:
    async with portal.client() as admin:
        csrf = await sign_in(admin, INGRID.email)
        before = (await admin.get("/api/v1/admin/policy")).json()
        refused = await form_post(admin, PATH, csrf, **fields)
        after = (await admin.get("/api/v1/admin/policy")).json()
    assert refused.status_code == 422
    assert words in refused.text
    assert after == before


async def test_an_employee_gets_no_policy_page_and_no_form_without_the_csrf_token(portal: Portal) -> None:
    async with portal.client() as kari, portal.client() as admin:
        await sign_in(kari, KARI.email)
        await page(kari, PATH, 403)
        assert (await form_post(kari, PATH, kari.cookies["csrftoken"])).status_code == 403
        await sign_in(admin, INGRID.email)
        assert (await form_post(admin, PATH, None, **{"payer.nettvern": "employee"})).status_code == 403


async def test_an_active_monthly_add_on_has_avslutt_and_its_confirmation(portal: Portal) -> None:
    async with portal.client() as client:
        csrf = await sign_in(client, KARI.email)
        order = await place_order(client, csrf, "min-sky-25gb")
        await publish(
            portal.amqp_url,
            worker_event(
                OrderCompleted(order=snapshot(order), carrier_order_id="c", completed_at=datetime.now(UTC))
            ),
        )
        await wait_status(client, order["id"], "completed")
        html = await page(client, "/abonnement")
        placed = await client.post(
            "/api/v1/orders",
            json={"product_code": "min-sky-25gb", "action": "delete"},
            headers={"X-CSRF-Token": csrf, "Idempotency-Key": "end-1"},
        )
        ending = await page(client, "/abonnement")
        orders = await page(client, "/bestillinger")
    active = html.one("ul", **{"data-role": "active-services"})
    [end] = [b for b in html.find("button", within=active) if b.attrs.get("data-action") == "end"]
    assert (end.text, end.attrs["data-product"], end.attrs["aria-label"]) == (
        "Avslutt",
        "min-sky-25gb",
        "Avslutt Min Sky 25GB",
    )
    confirm = html.one("dialog", id="end-dialog")
    assert "Avslutt tjeneste" in confirm.text
    assert [b.text for b in html.find("button", within=confirm)] == ["Ok", "Kanseller"]
    assert "Vil du avslutte {name}?" in html.one("script", id="i18n").text  # the script fills in the name
    assert placed.status_code == 202
    [waiting] = [
        b
        for b in ending.find("button", within=ending.one("ul", **{"data-role": "active-services"}))
        if b.attrs.get("data-action") == "end"
    ]
    assert waiting.text == "Avsluttes …"
    assert "disabled" in waiting.attrs
    assert waiting.attrs["data-order-id"] == placed.json()["id"]
    row = orders.one("tr", **{"data-order-id": placed.json()["id"]})
    assert "Avslutt Min Sky 25GB" in row.text  # Mine bestillinger tells the ending from the order
