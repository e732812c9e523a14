"""The employee's pages: the seed's Norwegian words, sign-in gates, CSRF, and live status streams."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from mport_shared.devstack import free_port
from mport_shared.events import (
    OrderCompleted,
    OrderFailed,
    OrderFailureCode,
    OrderProgressed,
    OrderSubmitted,
)
from mport_shared.testing import wait_for
from portal_api.seed import HAKON, KARI, PER, SIRI

from .conftest import MakePortal, Portal, publish, sign_in, snapshot, worker_event
from .conftest import place_order as place

pytestmark = pytest.mark.integration

PAGES = ("/", "/abonnement", "/bestillinger", "/policy", "/terminal", "/support", "/kontakt")
INTRO = (
    "Her kan du bestille tjenester og tillegg til ditt abonnement. Enkelte tjenester kan medføre "
    "lønnstrekk. Se bedriftens retningslinjer. (Policy)"
)
_VOID = {"input", "meta", "link", "br", "img", "hr", "source"}


# ---- a small HTML reader: enough to check a page's elements without a browser ------------------


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    ancestors: list[Element]
    parts: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join("".join(self.parts).split())


class Html(HTMLParser):
    def __init__(self, source: str) -> None:
        super().__init__()
        self.elements: list[Element] = []
        self._open: list[Element] = []
        self.feed(source)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs}, list(self._open))
        self.elements.append(element)
        if tag not in _VOID:
            self._open.append(element)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self._open) - 1, -1, -1):
            if self._open[i].tag == tag:
                del self._open[i:]
                return

    def handle_data(self, data: str) -> None:
        for element in self._open:
            element.parts.append(data)

    def find(self, tag: str | None = None, *, within: Element | None = None, **attrs: str) -> list[Element]:
        wanted = {k.rstrip("_").replace("_", "-"): v for k, v in attrs.items()}
        return [
            e
            for e in self.elements
            if (tag is None or e.tag == tag)
            and all(e.attrs.get(k) == v for k, v in wanted.items())
            and (within is None or any(a is within for a in e.ancestors))
        ]

    def one(self, tag: str | None = None, *, within: Element | None = None, **attrs: str) -> Element:
        found = self.find(tag, within=within, **attrs)
        assert len(found) == 1, f"expected one {tag} {attrs}, found {len(found)}"
        return found[0]

    @property
    def text(self) -> str:
        body = self.find("body")
        return body[0].text if body else ""


def button_named(page: Html, name: str) -> Element:
    matches = [e for e in page.find("button") if e.text == name]
    assert len(matches) == 1, f"expected one button {name!r}, found {len(matches)}"
    return matches[0]


# ---- helpers -----------------------------------------------------------------------------------


async def browser_sign_in(client: httpx.AsyncClient, email: str, *, next_path: str = "/abonnement") -> str:
    """Sign in as the development sign-in page's form does, from a browser; returns the CSRF token."""
    page = Html((await client.get("/logg-inn")).text)
    token = page.one("meta", name="csrf-token").attrs["content"]
    response = await client.post(
        "/auth/dev-login",
        data={"email": email, "csrf_token": token, "next": next_path},
        headers={"Origin": "http://testserver", "Accept": "text/html"},
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == next_path
    return client.cookies["csrftoken"]


@contextlib.asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[str]:
    """The (already started) app behind a real HTTP server: event streams need a real socket."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_config=None))
    task = asyncio.create_task(server.serve())
    await wait_for(lambda: _true(server.started), timeout_s=10, what="uvicorn to start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


async def _true(value: bool) -> bool:
    return value


@dataclass
class EventStream:
    """An open `GET /api/v1/events`, read event by event."""

    response: httpx.Response
    _lines: AsyncIterator[str]

    async def next_event(self, *, timeout_s: float = 10.0) -> tuple[str, str]:
        name, data = "message", []
        async with asyncio.timeout(timeout_s):
            async for line in self._lines:
                if line.startswith(":"):
                    continue  # keep-alive ping
                if line.startswith("event:"):
                    name = line.removeprefix("event:").strip()
                elif line.startswith("data:"):
                    data.append(line.removeprefix("data:").strip())
                elif line == "" and data:
                    return name, "\n".join(data)
        raise AssertionError("the event stream ended")

    async def next_order_event(self) -> dict[str, Any]:
        name, data = await self.next_event()
        assert name == "order", (name, data)
        event: dict[str, Any] = json.loads(data)
        return event


@contextlib.asynccontextmanager
async def event_stream(client: httpx.AsyncClient) -> AsyncIterator[EventStream]:
    async with client.stream("GET", "/api/v1/events", headers={"Accept": "text/event-stream"}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        stream = EventStream(response, response.aiter_lines())
        assert (await stream.next_event())[0] == "ready"  # subscribed: nothing published from now is missed
        yield stream


# ---- tests -------------------------------------------------------------------------------------


async def test_pages_send_a_signed_out_visitor_to_the_sign_in_page_and_the_api_answers_401(
    portal: Portal,
) -> None:
    async with portal.client() as client:
        for path in PAGES:
            response = await client.get(path)
            assert response.status_code == 303, path
            # From the front page, sign-in lands on Abonnement (the default); elsewhere it returns.
            assert response.headers["location"] == ("/logg-inn" if path == "/" else f"/logg-inn?neste={path}")
        for path in ("/api/v1/me", "/api/v1/orders", "/api/v1/events"):
            response = await client.get(path)
            assert response.status_code == 401, path
            assert response.headers["content-type"] == "application/problem+json"
            assert "Bruk jobbkonto" in response.json()["detail"]


async def test_the_sign_in_page_offers_the_work_account_and_in_local_mode_the_demo_people(
    portal: Portal,
) -> None:
    async with portal.client() as client:
        response = await client.get("/logg-inn?neste=/bestillinger")
    page = Html(response.text)
    assert response.status_code == 200
    work_account = [a for a in page.find("a") if a.text == "Bruk jobbkonto"]
    assert work_account[0].attrs["href"] == "/auth/oidc/login?neste=/bestillinger"
    forms = page.find("form", action="/auth/dev-login", method="post")
    emails = [f for f in page.find("input", name="email")]
    assert [e.attrs["value"] for e in emails] == [
        KARI.email,
        HAKON.email,
        "admin@demo.no",
        SIRI.email,
        PER.email,
    ]
    assert len(forms) == 5
    assert [h.text for h in page.find("h3")] == ["Demo Bedrift AS", "Fjord Logistikk AS"]
    token = page.one("meta", name="csrf-token").attrs["content"]
    assert all(i.attrs["value"] == token for i in page.find("input", name="csrf_token"))
    assert all(i.attrs["value"] == "/bestillinger" for i in page.find("input", name="next"))
    assert button_named(page, "Logg på som Kari Nordmann kari.nordmann@demo.no")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    async with portal.client() as client:
        front_door = Html((await client.get("/logg-inn")).text)
    # Come to the portal's front page: Bruk jobbkonto lands on Abonnement.
    assert next(a for a in front_door.find("a") if a.text == "Bruk jobbkonto").attrs["href"] == (
        "/auth/oidc/login?neste=/abonnement"
    )


async def test_outside_local_mode_there_is_no_development_sign_in(make_portal: MakePortal) -> None:
    portal = await make_portal(
        PORTAL_MODE="production", SESSION_SECRET="s" * 40, VERIFICATION_CODE_SECRET="v" * 40
    )
    async with portal.client() as client:
        page = Html((await client.get("/logg-inn")).text)
        login = await client.post("/auth/dev-login", data={"email": KARI.email})
    assert [a for a in page.find("a") if a.text == "Bruk jobbkonto"]
    assert "Utviklerinnlogging" not in page.text
    assert not page.find("form", action="/auth/dev-login")
    assert login.status_code == 404


async def test_a_browser_sign_in_needs_the_pages_csrf_token_and_stays_on_this_site(portal: Portal) -> None:
    async with portal.client() as client:
        forged = await client.post(
            "/auth/dev-login",
            data={"email": KARI.email},
            headers={"Origin": "https://evil.example", "Accept": "text/html"},
        )
        assert forged.status_code == 403
        assert "csrftoken" not in client.cookies
        await browser_sign_in(client, KARI.email, next_path="/bestillinger")
        assert (await client.get("/api/v1/me")).json()["email"] == KARI.email
    async with portal.client() as client:
        page = Html((await client.get("/logg-inn")).text)
        token = page.one("meta", name="csrf-token").attrs["content"]
        response = await client.post(
            "/auth/dev-login",
            data={"email": KARI.email, "csrf_token": token, "next": "//evil.example/x"},
            headers={"Origin": "http://testserver", "Accept": "text/html"},
        )
    assert response.headers["location"] == "/abonnement"


async def test_the_session_cookie_is_signed_http_only_and_same_site_lax(portal: Portal) -> None:
    async with portal.client() as client:
        response = await client.post("/auth/dev-login", data={"email": KARI.email})
    session = next(c for c in response.headers.get_list("set-cookie") if c.startswith("mport_session="))
    assert "httponly" in session.lower()
    assert "samesite=lax" in session.lower()


async def test_the_abonnement_page_shows_the_self_service_box_in_the_seeds_words(portal: Portal) -> None:
    async with portal.client() as client:
        await browser_sign_in(client, KARI.email)
        response = await client.get("/abonnement")
    assert response.status_code == 200
    page = Html(response.text)
    assert page.one("html").attrs["lang"] == "nb"
    menu = [a.text for a in page.find("a", within=page.one("nav"))]
    assert menu == ["HJEM", "ABONNEMENT", "TERMINAL", "SUPPORT", "KONTAKT OSS"]
    box = page.one("section", id="self-service")
    assert box.attrs["data-msisdn"] == "4791234567"
    assert INTRO in page.text
    assert [a for a in page.find("a", href="/policy") if a.text == "(Policy)"]

    toggles = page.find("button", class_="ss-toggle")
    assert [t.text for t in toggles] == [
        "Abonnement: Bedrift Total C (10 GB)",
        "Mine SIM-kort",
        "Mine aktive tjenester",
        "Tilgjengelige tjenester",
        "Tilgjengelige abonnementer",
    ]
    for toggle in toggles:
        panel = page.one(id=toggle.attrs["aria-controls"])
        assert toggle.attrs["type"] == "button"
        assert toggle.attrs["aria-expanded"] in {"true", "false"}
        assert ("hidden" in panel.attrs) == (toggle.attrs["aria-expanded"] == "false")
    assert toggles[3].attrs["aria-expanded"] == "false"  # "klikk på pil ned ved Tilgjengelige tjenester"

    assert "Sim hovedkort" in page.one("li", class_="sim main-sim").text
    assert button_named(page, "Aktiver nytt SIM")
    assert button_named(page, "Bestill SIM")
    assert page.one("ul", data_role="active-services").text == "Hoved-SIM"

    products = {e.attrs["data-product"]: e for e in page.find("li", class_="product")}
    names = [e.attrs["data-name"] for e in page.find("li", class_="product", data_kind="addon")]
    assert names == [
        "Hoved-SIM",
        "Ekstra Data 50GB",
        "Ekstra Data 15GB",
        "Ekstra Data 5GB",
        "Ekstra Data 1GB",
        "Min Sky 50GB ekstra",
        "Min Sky 25GB",
        "Min Sky 10GB ekstra",
        "Nettvern",
        "Tvilling",
        "Datakort",
    ]
    extra = products["ekstra-data-15gb"]
    assert extra.attrs["data-carrier"] == "Surf-15GB"
    assert extra.attrs["data-deduction"] == "149,00 kr"
    assert "149,00 kr" in extra.text
    assert "Lønnstrekk: 149,00 kr" in extra.text
    assert "Bestill" in extra.text
    assert "Dekkes av arbeidsgiver" in products["nettvern"].text
    assert "Lønnstrekk: 39,50 kr per måned" in products["min-sky-50gb"].text
    assert products["hoved-sim"].text.endswith("Bestilt")
    assert products["datakort"].attrs["data-state"] == "blocked"
    assert "Ikke tillatt etter bedriftens retningslinjer" in products["datakort"].text
    assert page.one("li", class_="note norway-note").text == "Dette gjelder KUN data innenfor Norge"
    assert products["bedrift-total-c"].attrs["data-state"] == "active"
    assert "Ditt abonnement" in products["bedrift-total-c"].text
    assert "Lønnstrekk: 100,00 kr per måned" in products["bedrift-total-e"].text
    assert products["bedrift-total-e"].attrs["data-name"] == "Bedrift Total E (50GB)"

    dialog = page.one("dialog", id="order-dialog")
    assert "Produkt:" in dialog.text
    assert "Legges til følgende msisdn:" in dialog.text
    assert [b.text for b in page.find("button", within=dialog)] == ["Ok", "Kanseller"]


async def test_every_menu_page_opens_for_a_signed_in_employee(portal: Portal) -> None:
    async with portal.client() as client:
        await browser_sign_in(client, KARI.email)
        pages = {path: await client.get(path) for path in PAGES}
    for path, response in pages.items():
        assert response.status_code == 200, path
        current = Html(response.text).find("a", aria_current="page")
        assert [a.attrs["href"] for a in current] == (
            [path] if path in {"/", "/abonnement", "/terminal", "/support", "/kontakt"} else []
        )
    assert "Hei, Kari Nordmann" in Html(pages["/"].text).text
    assert "Ingrid Berg, mPort administrator – admin@demo.no" in Html(pages["/kontakt"].text).text
    assert (
        "Kontakt din mPort administrator for ny eller reparert telefon." in Html(pages["/terminal"].text).text
    )


async def test_english_is_selectable_and_remembered(portal: Portal) -> None:
    async with portal.client() as client:
        await browser_sign_in(client, KARI.email)
        english = Html((await client.get("/abonnement?lang=en")).text)
        again = Html((await client.get("/abonnement")).text)
        back = Html((await client.get("/abonnement?lang=nb")).text)
    assert english.one("html").attrs["lang"] == "en"
    assert "Available services" in english.text
    assert "Salary deduction: NOK 149.00" in english.text
    assert again.one("html").attrs["lang"] == "en"
    assert "Tilgjengelige tjenester" in back.text


async def test_without_self_service_the_box_is_replaced_by_the_confirm_link(portal: Portal) -> None:
    async with portal.client() as client:
        await browser_sign_in(client, HAKON.email)
        page = Html((await client.get("/abonnement")).text)
    assert not page.find(id="self-service")
    assert "Tilgjengelige tjenester" not in page.text
    link = [a for a in page.find("a") if a.text == "Bekreft telefonnummer"]
    assert link[0].attrs["href"] == "/bekreft-telefonnummer"


async def test_open_and_failed_orders_show_on_the_pages(portal: Portal) -> None:
    async with portal.client() as client:
        csrf = await browser_sign_in(client, KARI.email)
        nettvern = await place(client, csrf, "nettvern")
        plan = await place(client, csrf, "bedrift-total-e")
        page = Html((await client.get("/abonnement")).text)
        pending = page.one("li", data_product="nettvern")
        assert pending.attrs["data-state"] == "pending"
        assert pending.attrs["data-order-id"] == nettvern["id"]
        assert "Bestiller …" in pending.text

        await publish(
            portal.amqp_url,
            worker_event(
                OrderFailed(
                    order=snapshot(plan),
                    carrier_order_id=None,
                    reason="Carrier rejected the order",
                    failed_at=datetime.now(UTC),
                )
            ),
        )

        async def failed() -> bool:
            return bool((await client.get(f"/api/v1/orders/{plan['id']}")).json()["status"] == "failed")

        await wait_for(failed, what="the plan order to fail")
        page = Html((await client.get("/abonnement")).text)
        orders = Html((await client.get("/bestillinger")).text)
    retry = page.one("li", data_product="bedrift-total-e")
    assert retry.attrs["data-state"] == "available"
    assert "Siste bestilling feilet: Carrier rejected the order" in retry.text
    rows = {r.attrs["data-order-id"]: r for r in orders.find("tr") if "data-order-id" in r.attrs}
    assert set(rows) == {nettvern["id"], plan["id"]}
    assert "Mottatt" in rows[nettvern["id"]].text
    assert "Nettvern" in rows[nettvern["id"]].text
    assert "Feilet" in rows[plan["id"]].text
    assert "Carrier rejected the order" in rows[plan["id"]].text
    assert "100,00 kr per måned" in rows[plan["id"]].text


async def wait_order(client: httpx.AsyncClient, order_id: str, **expected: object) -> None:
    async def there() -> bool:
        order = (await client.get(f"/api/v1/orders/{order_id}")).json()
        return all(order.get(k) == v for k, v in expected.items())

    await wait_for(there, what=f"order {order_id} to have {expected}")


async def test_an_order_with_the_carrier_shows_so_and_when_it_is_expected_to_be_done(portal: Portal) -> None:
    # 23:30 UTC on 30 November is 00:30 on 1 December in Norway: the page shows the Norwegian date.
    expected = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)
    async with portal.client() as client:
        csrf = await browser_sign_in(client, KARI.email)
        tvilling = await place(client, csrf, "tvilling")
        nettvern = await place(client, csrf, "nettvern")
        await publish(
            portal.amqp_url,
            worker_event(
                OrderSubmitted(
                    order_id=uuid.UUID(tvilling["id"]),
                    carrier_order_id="c-1",
                    submitted_at=datetime.now(UTC),
                    carrier_state="acknowledged",
                    expected_completion_at=expected,
                )
            ),
        )
        await wait_order(client, tvilling["id"], status="submitted")
        page = Html((await client.get("/abonnement")).text)
        orders = Html((await client.get("/bestillinger")).text)
        english = Html((await client.get("/bestillinger?lang=en")).text)

    with_carrier = page.one("li", data_product="tvilling")
    assert with_carrier.attrs["data-state"] == "pending"
    assert with_carrier.attrs["data-order-status"] == "submitted"
    assert with_carrier.attrs["data-expected-completion-at"] == expected.isoformat()
    button = page.one("button", within=with_carrier)
    assert button.text == "Under behandling hos operatøren"
    assert "disabled" in button.attrs
    message = page.one(id="message-tvilling")
    assert message.text == "Forventet ferdig 01.12.2026"
    assert "hidden" not in message.attrs
    assert button.attrs["aria-describedby"] == "name-tvilling message-tvilling"
    ordering = page.one("li", data_product="nettvern")
    assert page.one("button", within=ordering).text == "Bestiller …"
    assert "hidden" in page.one(id="message-nettvern").attrs

    rows = {r.attrs["data-order-id"]: r for r in orders.find("tr") if "data-order-id" in r.attrs}
    assert "Under behandling hos operatøren forventet ferdig 01.12.2026" in rows[tvilling["id"]].text
    assert orders.one(data_role="expected", within=rows[tvilling["id"]]).text == "forventet ferdig 01.12.2026"
    assert "Mottatt" in rows[nettvern["id"]].text
    assert "forventet" not in rows[nettvern["id"]].text
    assert "In progress with the operator expected to be done 01.12.2026" in english.text


@pytest.mark.parametrize(
    ("code", "nb", "en"),
    [
        (
            OrderFailureCode.CARRIER_DEADLINE_PASSED,
            "Operatøren ble ikke ferdig med bestillingen i tide. Du blir ikke trukket noe.",
            "The operator did not finish the order in time. You will not be charged anything.",
        ),
        (
            OrderFailureCode.CARRIER_UNREACHABLE,
            "Vi fikk ikke kontakt med operatøren i tide. Du blir ikke trukket noe.",
            "We could not reach the operator in time. You will not be charged anything.",
        ),
    ],
)
async def test_an_order_the_carrier_did_not_finish_in_time_says_so_in_plain_words(
    portal: Portal, code: OrderFailureCode, nb: str, en: str
) -> None:
    async with portal.client() as client:
        csrf = await browser_sign_in(client, KARI.email)
        order = await place(client, csrf, "min-sky-25gb")
        await publish(
            portal.amqp_url,
            worker_event(
                OrderFailed(
                    order=snapshot(order),
                    carrier_order_id="c-1",
                    reason="carrier order c-1 not completed by 2026-11-30T12:00:00Z",
                    reason_code=code,
                    failed_at=datetime.now(UTC),
                )
            ),
        )
        await wait_order(client, order["id"], status="failed")
        page = Html((await client.get("/abonnement")).text)
        orders = Html((await client.get("/bestillinger")).text)
        english = Html((await client.get("/abonnement?lang=en")).text)
    retry = page.one("li", data_product="min-sky-25gb")
    assert retry.attrs["data-state"] == "available"
    assert page.one(id="message-min-sky-25gb").text == f"Siste bestilling feilet: {nb}"
    row = orders.one("tr", data_order_id=order["id"])
    assert "Feilet" in row.text
    assert orders.one(data_role="reason", within=row).text == nb
    assert "2026-11-30T12" not in page.text + orders.text  # the worker's words are not for the employee
    assert english.one(id="message-min-sky-25gb").text == f"The last order failed: {en}"


async def test_the_event_stream_carries_the_carriers_progress(portal: Portal) -> None:
    expected = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
    async with served(portal.app) as base_url, httpx.AsyncClient(base_url=base_url) as kari:
        csrf = await sign_in(kari, KARI.email)
        async with event_stream(kari) as events:
            order = await place(kari, csrf, "tvilling")
            await publish(
                portal.amqp_url,
                worker_event(
                    OrderProgressed(
                        order_id=uuid.UUID(order["id"]),
                        carrier_order_id="c-1",
                        carrier_state="inProgress",
                        expected_completion_at=expected,
                        progressed_at=datetime.now(UTC),
                    )
                ),
            )
            update = await events.next_order_event()
    assert update == {
        "order_id": order["id"],
        "status": "submitted",
        "product_code": "tvilling",
        "failure_reason": None,
        "failure_code": None,
        "carrier_state": "inProgress",
        "expected_completion_at": expected.isoformat(),
        "action": "add",
    }


def test_the_page_script_has_the_words_for_the_carriers_progress() -> None:
    from portal_api.i18n import Translator

    for lang in ("nb", "en"):
        words = Translator(lang).js_strings()
        for key in (
            "button.with_carrier",
            "product.expected",
            "order.expected",
            "order.with_carrier",
            "order.with_carrier_expected",
            "failure.carrier_deadline_passed",
            "failure.carrier_unreachable",
        ):
            assert words[key] != key, (lang, key)


async def test_an_employee_sees_only_their_own_orders(portal: Portal) -> None:
    async with portal.client() as kari, portal.client() as hakon:
        csrf = await browser_sign_in(kari, KARI.email)
        order = await place(kari, csrf, "tvilling")
        await browser_sign_in(hakon, HAKON.email)
        assert (await hakon.get(f"/api/v1/orders/{order['id']}")).status_code == 404
        page = Html((await hakon.get("/bestillinger")).text)
    assert not [r for r in page.find("tr") if "data-order-id" in r.attrs]
    assert "Du har ingen bestillinger ennå." in page.text


async def test_the_policy_page_says_who_pays_what(portal: Portal) -> None:
    async with portal.client() as client:
        await browser_sign_in(client, KARI.email)
        page = Html((await client.get("/policy")).text)
    text = page.text
    assert "Arbeidsgiver dekker abonnement opp til og med Bedrift Total C (10 GB)" in text
    lines = {c[0]: c[1:] for tr in page.find("tr") if (c := [e.text for e in page.find(within=tr)])}
    assert lines["Ekstra Data 15GB"] == ["149,00 kr", "Du (lønnstrekk 149,00 kr)"]
    assert lines["Min Sky 50GB ekstra"] == [
        "79,00 kr",
        "Du betaler 39,50 kr per måned av 79,00 kr (lønnstrekk)",
    ]
    assert lines["Nettvern"] == ["49,00 kr", "Arbeidsgiver"]
    assert lines["Datakort"] == ["69,00 kr", "Ikke tillatt"]
    assert lines["Bedrift Total E (50GB)"] == [
        "499,00 kr",
        "Du betaler 100,00 kr per måned av 499,00 kr (lønnstrekk)",
    ]


async def test_sign_out_needs_the_csrf_token_and_ends_the_session(portal: Portal) -> None:
    async with portal.client() as client:
        csrf = await browser_sign_in(client, KARI.email)
        assert (await client.post("/auth/logout")).status_code == 403
        assert (await client.get("/api/v1/me")).status_code == 200
        response = await client.post("/auth/logout", data={"csrf_token": csrf})
        assert response.status_code == 303
        assert response.headers["location"] == "/logg-inn"
        assert (await client.get("/api/v1/me")).status_code == 401


async def test_an_unknown_page_is_a_page_for_browsers_and_a_problem_for_the_api(portal: Portal) -> None:
    async with portal.client() as client:
        page = await client.get("/finnes-ikke", headers={"Accept": "text/html"})
        api = await client.get("/api/v1/finnes-ikke", headers={"Accept": "text/html"})
    assert page.status_code == 404
    assert "Siden finnes ikke." in Html(page.text).text
    assert api.status_code == 404
    assert api.headers["content-type"] == "application/problem+json"


async def test_the_event_stream_carries_this_employees_order_status_changes_only(portal: Portal) -> None:
    async with (
        served(portal.app) as base_url,
        httpx.AsyncClient(base_url=base_url) as kari,
        httpx.AsyncClient(base_url=base_url) as hakon,
    ):
        csrf = await sign_in(kari, KARI.email)
        await sign_in(hakon, HAKON.email)
        async with event_stream(kari) as kari_events, event_stream(hakon) as hakon_events:
            order = await place(kari, csrf, "nettvern")
            now = datetime.now(UTC)
            # One at a time: the status consumer handles a prefetch of events concurrently, and a
            # "submitted" that loses the race to "completed" is rightly dropped as stale.
            await publish(
                portal.amqp_url,
                worker_event(
                    OrderSubmitted(order_id=uuid.UUID(order["id"]), carrier_order_id="c-1", submitted_at=now)
                ),
            )
            assert await kari_events.next_order_event() == {
                "order_id": order["id"],
                "status": "submitted",
                "product_code": "nettvern",
                "failure_reason": None,
                "failure_code": None,
                "carrier_state": None,
                "expected_completion_at": None,
                "action": "add",
            }
            await publish(
                portal.amqp_url,
                worker_event(OrderCompleted(order=snapshot(order), carrier_order_id="c-1", completed_at=now)),
            )
            assert (await kari_events.next_order_event())["status"] == "completed"

            # Håkon's own event, published after Kari's, is the first his stream carries.
            his = {**order, "id": str(uuid.uuid4())}
            await publish(
                portal.amqp_url,
                worker_event(
                    OrderFailed(
                        order=snapshot(his, HAKON.id), carrier_order_id=None, reason="nei", failed_at=now
                    )
                ),
            )
            assert await hakon_events.next_order_event() == {
                "order_id": his["id"],
                "status": "failed",
                "product_code": "nettvern",
                "failure_reason": "nei",
                "failure_code": "carrier_rejected",
                "carrier_state": None,
                "expected_completion_at": None,
                "action": "add",
            }


async def test_every_portal_instance_streams_every_status_event(make_portal: MakePortal) -> None:
    # The status work queue has competing consumers; the live feed is a queue per instance.
    first, second = await make_portal(), await make_portal()
    async with (
        served(first.app) as first_url,
        served(second.app) as second_url,
        httpx.AsyncClient(base_url=first_url) as on_first,
        httpx.AsyncClient(base_url=second_url) as on_second,
    ):
        csrf = await sign_in(on_first, KARI.email)
        await sign_in(on_second, KARI.email)
        async with event_stream(on_first) as first_events, event_stream(on_second) as second_events:
            order = await place(on_first, csrf, "tvilling")
            completed = OrderCompleted(
                order=snapshot(order), carrier_order_id="c", completed_at=datetime.now(UTC)
            )
            await publish(first.amqp_url, worker_event(completed))
            for events in (first_events, second_events):
                assert (await events.next_order_event())["order_id"] == order["id"]


def test_norwegian_money_format() -> None:
    from portal_api.i18n import format_kr

    assert format_kr(14_900, "nb") == "149,00 kr"
    assert format_kr(124_950, "nb") == "1\u00a0249,50 kr"
    assert format_kr(0, "nb") == "0,00 kr"
    assert format_kr(124_950, "en") == "NOK 1,249.50"
    assert re.fullmatch(r"\d+,\d\d kr", format_kr(3_950, "nb"))
