"""The seed guide's steps 1–8 in a real browser (Chromium) against the whole running system:
sign in with Bruk jobbkonto at the local identity provider, Abonnement, Bestill, the confirm dialog,
and the status arriving live without a reload. Every page, with every row open, passes axe-core's
WCAG 2.1 A and AA rules (and its best practices)."""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from axe_playwright_python.async_playwright import Axe
from mport_shared.devstack import Stack, StackConfig, free_port
from mport_shared.testing import RabbitServer, latest_sms_code
from playwright.async_api import Browser, Page, Route, ViewportSize, async_playwright, expect

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.browser,
    # On a developer's machine without Chromium these are skipped; CI installs it, so there a
    # missing browser is a failure, not a silent skip.
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() and not os.environ.get("CI"),
        reason=f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)",
    ),
]

ARTIFACTS = Path("test-artifacts/browser")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}
LIVE_TIMEOUT_MS = 20_000
SERVICES = {
    "portal-api": "portal_api",
    "order-worker": "order_worker",
    "sms-worker": "sms_worker",
    "payroll-worker": "payroll_worker",
}


# ---- the running system, once for this module ------------------------------------------------


def _database_url(admin_url: str, name: str) -> str:
    parts = urlsplit(admin_url)
    return urlunsplit(parts._replace(scheme="postgresql+asyncpg", path=f"/{name}"))


@pytest.fixture(scope="module")
async def stack(rabbit_server: RabbitServer, postgres_server: str) -> AsyncIterator[Stack]:
    """Every service as a real process on free ports, on a vhost and databases of this module's own.

    (The `amqp_url` and `make_database` fixtures are per test; one system for the module is enough
    here since each test orders different products.)"""
    vhost = f"mport-browser-{uuid.uuid4().hex[:12]}"
    databases = {name: f"mport_browser_{uuid.uuid4().hex[:12]}" for name in SERVICES}
    rabbit_server.create_vhost(vhost)
    admin = await asyncpg.connect(postgres_server)
    try:
        for database in databases.values():
            await admin.execute(f'CREATE DATABASE "{database}"')
    finally:
        await admin.close()
    ports = {name: free_port() for name in ("carrier-simulator", "identity-simulator", *SERVICES)}
    config = StackConfig(
        amqp_url=rabbit_server.vhost_url(vhost),
        database_urls={name: _database_url(postgres_server, db) for name, db in databases.items()},
        ports=ports,
        extra_env={
            "portal-api": {"PORTAL_MODE": "local", "PUBLIC_URL": f"http://127.0.0.1:{ports['portal-api']}"}
        },
        log_dir=ARTIFACTS / "logs" / vhost,
    )
    system = Stack(config)
    try:
        await system.prepare()
        await system.start()
        yield system
    finally:
        await system.stop()
        admin = await asyncpg.connect(postgres_server)
        try:
            for database in databases.values():
                await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        finally:
            await admin.close()
        rabbit_server.delete_vhost(vhost)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


@pytest.fixture
async def page(browser: Browser, request: pytest.FixtureRequest) -> AsyncIterator[Page]:
    viewport = PHONE if "phone" in request.node.name else DESKTOP
    context = await browser.new_context(viewport=viewport, locale="nb-NO")
    tab = await context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    await context.close()
    assert errors == [], f"script errors on the page: {errors}"


# ---- steps -------------------------------------------------------------------------------------


async def shot(page: Page, name: str) -> None:
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def sign_in(
    page: Page, stack: Stack, person: str = "Kari Nordmann", *, shot_as: str = "", live: bool = True
) -> None:
    """Step 1: "Logg på mPort.no med Bruk jobbkonto", then pick the person at the local identity
    provider's sign-in page, which sends the browser back to the portal, signed in."""
    await page.goto(f"{stack.url('portal-api')}/abonnement")
    await expect(page).to_have_url(re.compile(r"/logg-inn\?neste=/abonnement$"))
    if shot_as:
        await shot(page, f"{shot_as}-1-sign-in")
    await page.get_by_role("link", name="Bruk jobbkonto").click()
    await expect(page).to_have_url(re.compile(f"^{re.escape(stack.url('identity-simulator'))}/authorize"))
    if shot_as:
        await shot(page, f"{shot_as}-1-identity-provider")
    await page.get_by_role("button", name=re.compile(f"^{person}")).click()
    await expect(page).to_have_url(f"{stack.url('portal-api')}/abonnement")
    if live:  # the live stream is listening before anything is ordered
        await expect(page.locator("html")).to_have_attribute("data-live", "ready")


def product(page: Page, code: str) -> Any:
    return page.locator(f"[data-orderable][data-product='{code}']")


async def expand(page: Page, row: str) -> None:
    toggle = page.get_by_role("button", name=row, exact=True)
    await expect(toggle).to_have_attribute("aria-expanded", "false")
    await toggle.click()
    await expect(toggle).to_have_attribute("aria-expanded", "true")


async def orders_of(page: Page, stack: Stack, product_code: str) -> list[dict[str, Any]]:
    """The signed-in employee's orders of one product, asked of the API with the page's session."""
    response = await page.request.get(f"{stack.url('portal-api')}/api/v1/orders")
    assert response.ok
    orders: list[dict[str, Any]] = await response.json()
    return [o for o in orders if o["product_code"] == product_code]


async def mark_page(page: Page) -> None:
    """A marker that only survives while this very document stays loaded."""
    await page.evaluate("() => { window.__noReload = 'still here'; }")


async def assert_not_reloaded(page: Page) -> None:
    assert await page.evaluate("() => window.__noReload") == "still here"


async def record_button_texts(page: Page, code: str) -> None:
    """From now on, window.__buttonTexts lists each text the product's button takes, in order."""
    await page.evaluate(
        """(code) => {
            const row = document.querySelector(`[data-orderable][data-product="${code}"]`);
            const text = () => row.querySelector("button").textContent.trim();
            window.__buttonTexts = [text()];
            new MutationObserver(() => {
                if (window.__buttonTexts.at(-1) !== text()) window.__buttonTexts.push(text());
            }).observe(row, { subtree: true, childList: true, characterData: true });
        }""",
        code,
    )


async def carrier(stack: Stack, **config: Any) -> None:
    async with httpx.AsyncClient(base_url=stack.url("carrier-simulator")) as client:
        (await client.put("/simulator/config", json=config)).raise_for_status()


def luhn_complete(digits: str) -> str:
    """`digits` plus the Luhn check digit that makes it a valid ICC number."""
    for check in "0123456789":
        candidate = digits + check
        total = 0
        for i, ch in enumerate(reversed(candidate)):
            d = int(ch) * (2 if i % 2 else 1)
            total += d - 9 if d > 9 else d
        if total % 10 == 0:
            return candidate
    raise AssertionError("unreachable")


# ---- the seed guide, steps 1–5: order Ekstra Data 15GB --------------------------------------


async def test_ordering_ekstra_data_turns_bestill_into_bestilt_live_without_a_reload(
    page: Page, stack: Stack
) -> None:
    await carrier(stack, latency_ms=1500)  # slow enough to see "Bestiller …" on the way
    try:
        await sign_in(page, stack, shot_as="desktop")
        navigations: list[str] = []
        page.on("framenavigated", lambda frame: navigations.append(frame.url))
        await mark_page(page)
        await expect(page.get_by_role("navigation")).to_contain_text("HJEM")
        await shot(page, "desktop-2-abonnement")

        # Step 3: the box, and the arrow down at "Tilgjengelige tjenester".
        await expect(
            page.get_by_text("Her kan du bestille tjenester og tillegg til ditt abonnement.")
        ).to_be_visible()
        await expand(page, "Tilgjengelige tjenester")
        extra = product(page, "ekstra-data-15gb")
        await expect(extra).to_contain_text("149,00 kr")
        await expect(extra).to_contain_text("Lønnstrekk: 149,00 kr")
        await expect(page.locator(".norway-note")).to_have_text("Dette gjelder KUN data innenfor Norge")
        await shot(page, "desktop-3-tilgjengelige-tjenester")

        # Step 4: Bestill; step 5: the confirm dialog with the carrier's code and the number.
        await extra.get_by_role("button", name="Bestill").click()
        dialog = page.get_by_role("dialog")
        await expect(dialog).to_be_visible()
        await expect(dialog).to_contain_text("Produkt: Surf-15GB")
        await expect(dialog).to_contain_text("Legges til følgende msisdn: 4791234567")
        await expect(dialog).to_contain_text("Dette medfører lønnstrekk: 149,00 kr.")
        await shot(page, "desktop-4-bekreft")
        # Every text the button shows, as the page sets it: "Bestiller …" may last only until the
        # order-worker has submitted the order, a few milliseconds, too short to poll for.
        await record_button_texts(page, "ekstra-data-15gb")
        await dialog.get_by_role("button", name="Ok").click()
        await expect(dialog).to_be_hidden()

        button = extra.get_by_role("button")
        await expect(button).to_be_disabled()
        await shot(page, "desktop-5-bestiller")
        await expect(button).to_have_text("Bestilt", timeout=LIVE_TIMEOUT_MS)
        assert await page.evaluate("() => window.__buttonTexts") == [
            "Bestill",
            "Bestiller …",
            "Under behandling hos operatøren",
            "Bestilt",
        ]
        await expect(page.locator("[data-role=active-services]")).to_contain_text("Ekstra Data 15GB")
        await shot(page, "desktop-6-bestilt")
    finally:
        await carrier(stack, latency_ms=0)
    await assert_not_reloaded(page)
    assert navigations == []
    assert [o["status"] for o in await orders_of(page, stack, "ekstra-data-15gb")] == ["completed"]


async def test_kanseller_places_nothing(page: Page, stack: Stack) -> None:
    await sign_in(page, stack)
    await expand(page, "Tilgjengelige tjenester")
    one_gb = product(page, "ekstra-data-1gb")
    await one_gb.get_by_role("button", name="Bestill").click()
    dialog = page.get_by_role("dialog")
    await expect(dialog).to_contain_text("Produkt: Surf-1GB")
    await dialog.get_by_role("button", name="Kanseller").click()
    await expect(dialog).to_be_hidden()
    # Escape is the keyboard's Kanseller.
    await one_gb.get_by_role("button", name="Bestill").click()
    await expect(dialog).to_be_visible()
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    await expect(one_gb.get_by_role("button")).to_have_text("Bestill")
    await expect(one_gb.get_by_role("button")).to_be_enabled()
    assert await orders_of(page, stack, "ekstra-data-1gb") == []


async def test_a_double_click_on_ok_places_one_order(page: Page, stack: Stack) -> None:
    await sign_in(page, stack)
    await expand(page, "Tilgjengelige tjenester")
    five_gb = product(page, "ekstra-data-5gb")
    await five_gb.get_by_role("button", name="Bestill").click()
    await page.get_by_role("dialog").get_by_role("button", name="Ok").dblclick()
    await expect(five_gb.get_by_role("button")).to_have_text("Bestilt", timeout=LIVE_TIMEOUT_MS)
    assert len(await orders_of(page, stack, "ekstra-data-5gb")) == 1


async def test_a_failed_order_shows_its_reason_and_can_be_ordered_again(page: Page, stack: Stack) -> None:
    await carrier(stack, failure_rate=1.0)
    try:
        await sign_in(page, stack)
        await expand(page, "Tilgjengelige tjenester")
        nettvern = product(page, "nettvern")
        await expect(nettvern).to_contain_text("Dekkes av arbeidsgiver")
        await nettvern.get_by_role("button", name="Bestill").click()
        await expect(page.get_by_role("dialog")).not_to_contain_text("lønnstrekk")
        await page.get_by_role("dialog").get_by_role("button", name="Ok").click()
        await expect(nettvern).to_contain_text("Bestillingen feilet:", timeout=LIVE_TIMEOUT_MS)
        await expect(nettvern).to_contain_text("simulated failure")
        await expect(nettvern.get_by_role("button")).to_have_text("Bestill")
        await expect(nettvern.get_by_role("button")).to_be_enabled()
        await shot(page, "desktop-feilet")
    finally:
        await carrier(stack, failure_rate=0.0)
    assert [o["status"] for o in await orders_of(page, stack, "nettvern")] == ["failed"]


# ---- steps 6–8: a bigger plan ---------------------------------------------------------------


async def test_changing_plan_from_c_to_e_shows_the_new_plan_without_a_reload(
    page: Page, stack: Stack
) -> None:
    await sign_in(page, stack)
    await mark_page(page)
    plan_row = page.locator("#toggle-plan")
    await expect(plan_row).to_have_text("Abonnement: Bedrift Total C (10 GB)")
    await expand(page, "Tilgjengelige abonnementer")
    current = product(page, "bedrift-total-c")
    await expect(current).to_contain_text("Ditt abonnement")
    await expect(current.get_by_role("button")).to_have_text("Bestilt")
    plan_e = product(page, "bedrift-total-e")
    await expect(plan_e).to_contain_text("Lønnstrekk: 100,00 kr per måned")
    await plan_e.get_by_role("button", name="Bestill").click()
    dialog = page.get_by_role("dialog")
    await expect(dialog).to_contain_text("Produkt: BT-E-50GB")
    await expect(dialog).to_contain_text("Dette medfører lønnstrekk: 100,00 kr per måned.")
    await shot(page, "desktop-7-bekreft-abonnement")
    await dialog.get_by_role("button", name="Ok").click()

    await expect(plan_row).to_have_text("Abonnement: Bedrift Total E (50GB)", timeout=LIVE_TIMEOUT_MS)
    await expect(plan_e.locator("[data-role=current-marker]")).to_have_text("Ditt abonnement")
    await expect(plan_e.get_by_role("button")).to_have_text("Bestilt")
    await expect(current.get_by_role("button")).to_have_text("Bestill")
    await expect(current.locator("[data-role=current-marker]")).to_be_hidden()
    await shot(page, "desktop-8-nytt-abonnement")
    await assert_not_reloaded(page)


# ---- Mine SIM-kort ----------------------------------------------------------------------------


async def test_sim_activation_refuses_a_bad_icc_with_a_message(page: Page, stack: Stack) -> None:
    await sign_in(page, stack)
    await expect(page.get_by_text("Sim hovedkort")).to_be_visible()
    await page.get_by_role("button", name="Aktiver nytt SIM").click()
    dialog = page.get_by_role("dialog")
    icc = dialog.get_by_label("ICC-nummer")
    ok = dialog.get_by_role("button", name="Ok")
    await expect(dialog).to_contain_text("Produkt: SIM-Aktiver")

    await icc.fill("8947 0000 1234")
    await ok.click()
    await expect(dialog).to_contain_text("ICC-nummeret må være 19 eller 20 siffer.")
    await expect(icc).to_have_attribute("aria-invalid", "true")
    good = luhn_complete("894700000000000001")
    await icc.fill(good[:-1] + str((int(good[-1]) + 1) % 10))
    await ok.click()
    await expect(dialog).to_contain_text("ICC-nummeret har feil kontrollsiffer.")
    await shot(page, "desktop-sim-feil-icc")
    assert await orders_of(page, stack, "aktiver-nytt-sim") == []

    # What the server says (422) is shown too, should the two ever disagree. The page goes by the
    # problem's type, never its title: a title alone is a refusal like any other.
    problem: dict[str, Any] = {"title": "Invalid ICC number", "status": 422, "detail": "wrong check digit"}

    async def refuse(route: Route) -> None:
        await route.fulfill(status=422, content_type="application/problem+json", body=json.dumps(problem))

    await page.route("**/api/v1/orders", refuse)
    await icc.fill(good)
    await ok.click()
    await expect(dialog).to_contain_text("Noe gikk galt: wrong check digit")
    await expect(icc).to_have_attribute("aria-invalid", "false")
    problem.update(type="https://mport.no/problems/invalid-icc", title="Whatever it says")
    await ok.click()
    await expect(dialog).to_contain_text("ICC-nummeret ble avvist")
    await expect(icc).to_have_attribute("aria-invalid", "true")
    await expect(ok).to_be_enabled()
    await page.unroute("**/api/v1/orders", refuse)

    await ok.click()
    await expect(dialog).to_be_hidden()
    await expect(page.locator("[data-role=main-sim-icc]")).to_have_text(good, timeout=LIVE_TIMEOUT_MS)
    assert [o["details"] for o in await orders_of(page, stack, "aktiver-nytt-sim")] == [{"icc": good}]


async def test_bestill_sim_asks_where_to_send_it(page: Page, stack: Stack) -> None:
    await sign_in(page, stack)
    await page.get_by_role("button", name="Bestill SIM").click()
    dialog = page.get_by_role("dialog")
    await expect(dialog.get_by_label("Navn på mottaker")).to_have_value("Kari Nordmann")
    await dialog.get_by_role("button", name="Ok").click()
    await expect(dialog).to_contain_text("Fyll ut feltet.")
    await dialog.get_by_label("Leveringsadresse").fill("Storgata 1, 0155 Oslo")
    await dialog.get_by_role("button", name="Ok").click()
    await expect(dialog).to_be_hidden()
    await expect(page.locator("[data-role=sim-list]")).to_contain_text(
        "Nytt SIM (sendt)", timeout=LIVE_TIMEOUT_MS
    )
    assert [o["details"] for o in await orders_of(page, stack, "bestill-sim")] == [
        {"delivery_name": "Kari Nordmann", "delivery_address": "Storgata 1, 0155 Oslo"}
    ]


# ---- Mine bestillinger, phone, keyboard --------------------------------------------------------


async def test_mine_bestillinger_follows_an_order_placed_in_another_tab(page: Page, stack: Stack) -> None:
    await sign_in(page, stack)
    orders_tab = await page.context.new_page()
    await orders_tab.goto(f"{stack.url('portal-api')}/bestillinger")
    await expect(orders_tab.locator("html")).to_have_attribute("data-live", "ready")
    await expand(page, "Tilgjengelige tjenester")
    await product(page, "tvilling").get_by_role("button", name="Bestill").click()
    await page.get_by_role("dialog").get_by_role("button", name="Ok").click()
    row = orders_tab.locator("tr", has_text="Tvilling")
    await expect(row).to_contain_text("Bestilt", timeout=LIVE_TIMEOUT_MS)
    await shot(orders_tab, "desktop-9-mine-bestillinger")


async def test_on_a_phone_the_box_and_dialog_fit_the_screen(page: Page, stack: Stack) -> None:
    await sign_in(page, stack, shot_as="phone")
    await shot(page, "phone-2-abonnement")
    toggle = page.get_by_role("button", name="Tilgjengelige tjenester", exact=True)
    # Keyboard: a real button, opened with Enter and closed with Space.
    await toggle.focus()
    await page.keyboard.press("Enter")
    await expect(toggle).to_have_attribute("aria-expanded", "true")
    await shot(page, "phone-3-tilgjengelige-tjenester")
    await product(page, "min-sky-25gb").get_by_role("button", name="Bestill").click()
    dialog = page.get_by_role("dialog")
    await expect(dialog).to_contain_text("Produkt: Sky-25GB")
    await expect(dialog).to_contain_text("Dette medfører lønnstrekk: 24,50 kr per måned.")
    await page.screenshot(path=str(ARTIFACTS / "phone-4-bekreft.png"))
    await dialog.get_by_role("button", name="Kanseller").click()
    await toggle.focus()
    await page.keyboard.press("Space")
    await expect(toggle).to_have_attribute("aria-expanded", "false")
    overflow = await page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0


# ---- accessibility: axe-core on every page, every row open ------------------------------------

AXE = Axe()  # axe-core as axe-playwright-python ships it, injected into the page by Playwright
AXE_OPTIONS = {
    "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]},
    "resultTypes": ["violations"],
}


async def assert_accessible(page: Page, what: str) -> None:
    results = await AXE.run(page, options=AXE_OPTIONS)
    assert results.violations_count == 0, f"{what} ({page.url}):\n{results.generate_report()}"
    # Not vacuous: the rules ran and found things that pass (a page, not an empty document).
    assert len(results.response["passes"]) >= 10, results.response["passes"]


async def open_every_row(page: Page) -> int:
    """Open each collapsible row of the page; how many there were."""
    toggles = page.locator("button[aria-expanded]")
    for i in range(await toggles.count()):
        toggle = toggles.nth(i)
        if await toggle.get_attribute("aria-expanded") == "false":
            await toggle.click()
            await expect(toggle).to_have_attribute("aria-expanded", "true")
    return await toggles.count()


async def test_every_page_with_every_row_open_passes_axe(page: Page, stack: Stack) -> None:
    portal = stack.url("portal-api")
    await page.goto(f"{portal}/logg-inn")
    await assert_accessible(page, "Logg på")
    await page.get_by_role("link", name="Bruk jobbkonto").click()
    await expect(page.get_by_role("heading", name="Logg inn", exact=True)).to_be_visible()
    await assert_accessible(page, "the identity simulator's sign-in page")
    await page.get_by_role("button", name=re.compile("^Kari Nordmann")).click()
    await expect(page).to_have_url(re.compile(r"/$|/abonnement$"))

    await page.goto(f"{portal}/abonnement")
    await expect(page.locator("html")).to_have_attribute("data-live", "ready")
    assert await open_every_row(page) >= 4
    await assert_accessible(page, "Abonnement, every row open")
    await product(page, "ekstra-data-1gb").get_by_role("button", name="Bestill").click()
    await expect(page.get_by_role("dialog")).to_be_visible()
    await assert_accessible(page, "the confirm dialog")
    await page.get_by_role("dialog").get_by_role("button", name="Kanseller").click()
    for button, what in (("Aktiver nytt SIM", "the ICC dialog"), ("Bestill SIM", "the delivery dialog")):
        await page.get_by_role("button", name=button).click()
        await expect(page.get_by_role("dialog")).to_be_visible()
        await assert_accessible(page, what)
        await page.get_by_role("dialog").get_by_role("button", name="Kanseller").click()

    for path, what in (
        ("/", "Hjem"),
        ("/bestillinger", "Mine bestillinger"),
        ("/policy", "Policy"),
        ("/terminal", "Terminal"),
        ("/support", "Support"),
        ("/kontakt", "Kontakt oss"),
        ("/finnes-ikke", "the not-found page"),
    ):
        await page.goto(f"{portal}{path}")
        await open_every_row(page)
        await assert_accessible(page, what)


async def test_on_a_phone_in_english_and_for_someone_without_self_service_the_pages_pass_axe(
    page: Page, stack: Stack
) -> None:
    portal = stack.url("portal-api")
    await sign_in(page, stack, "Håkon Hafell", live=False)  # nothing to follow before self-service
    await expect(page.get_by_role("link", name="Bekreft telefonnummer")).to_be_visible()
    await open_every_row(page)
    await assert_accessible(page, "Abonnement before the number is confirmed, on a phone")
    await page.get_by_role("link", name="English").click()
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await open_every_row(page)
    await assert_accessible(page, "Abonnement in English, on a phone")
    await page.get_by_role("link", name="Norsk").click()
    await expect(page.locator("html")).to_have_attribute("lang", "nb")
    for path in ("/", "/bestillinger", "/policy"):
        await page.goto(f"{portal}{path}")
        await assert_accessible(page, f"{path} on a phone")


async def test_a_refused_sign_in_is_an_accessible_page_that_says_why(page: Page, stack: Stack) -> None:
    # An address typed at the identity simulator is another account, and not verified there.
    await page.goto(f"{stack.url('portal-api')}/logg-inn")
    await page.get_by_role("link", name="Bruk jobbkonto").click()
    await page.get_by_role("textbox", name="E-postadresse").fill("kari.nordmann@demo.no")
    await page.get_by_role("button", name="Logg inn med denne adressen").click()
    await expect(page.get_by_role("heading", name="Innloggingen mislyktes")).to_be_visible()
    await expect(page.locator(".error-message")).to_contain_text(
        "Innloggingstjenesten har ikke bekreftet e-postadressen kari.nordmann@demo.no"
    )
    await assert_accessible(page, "the refused sign-in")
    response = await page.request.get(f"{stack.url('portal-api')}/api/v1/me")
    assert response.status == 401


# ---- the seed guide, steps 9–12: Håkon confirms his number, then orders --------------------------


async def test_hakon_confirms_his_number_with_the_code_from_the_sms_and_then_orders(
    page: Page, stack: Stack
) -> None:
    # The whole system: the portal publishes the code, the sms-worker sends it through the SMS
    # gateway simulator, which reports it delivered; Håkon reads it where a developer would.
    await sign_in(page, stack, "Håkon Hafell", live=False)
    await expect(
        page.get_by_text("Her kan du bestille tjenester og tillegg til ditt abonnement.")
    ).to_have_count(0)
    await page.get_by_role("link", name="Bekreft telefonnummer").click()
    await expect(page.get_by_role("heading", name="Bekreft telefonnummer for Håkon Hafell")).to_be_visible()
    simulator = f"{stack.url('sms-simulator')}/messages"
    await expect(page.get_by_role("link", name=simulator)).to_be_visible()  # where the code is, locally
    await page.get_by_role("button", name="Send engangskode på SMS").click()
    await expect(page.locator("[data-role=delivery]")).to_have_text(
        "SMS-en med engangskoden er levert til telefonen din.", timeout=LIVE_TIMEOUT_MS
    )
    await shot(page, "hakon-1-code-delivered")
    async with httpx.AsyncClient() as client:
        code = await latest_sms_code(client, stack.url("sms-simulator"), "4748123456")
    assert code is not None
    await page.get_by_label("Legg inn engangskode mottatt på SMS").fill(code)
    await page.get_by_role("button", name="Bekreft telefonnummer").click()
    await expect(page.get_by_text("Ditt telefonnummer er bekreftet.")).to_be_visible()
    await page.get_by_role("link", name="Ok").click()
    await expect(page).to_have_url(f"{stack.url('portal-api')}/abonnement")
    await expect(page.locator("html")).to_have_attribute("data-live", "ready")

    # Now the box is there, and Ekstra Data can be ordered through it.
    await expand(page, "Tilgjengelige tjenester")
    extra = product(page, "ekstra-data-1gb")
    await extra.get_by_role("button", name="Bestill").click()
    dialog = page.get_by_role("dialog")
    await expect(dialog).to_contain_text("Legges til følgende msisdn: 4748123456")
    await dialog.get_by_role("button", name="Ok").click()
    await expect(extra.get_by_role("button")).to_have_text("Bestilt", timeout=LIVE_TIMEOUT_MS)
    await shot(page, "hakon-2-bestilt")
    assert [o["status"] for o in await orders_of(page, stack, "ekstra-data-1gb")] == ["completed"]

    # Not one log line of any service, of the whole run so far, carries the code.
    log_dir = stack.config.log_dir
    assert log_dir is not None
    logs = {path.name: path.read_text(errors="replace") for path in log_dir.glob("*")}
    assert {"portal-api", "sms-worker", "sms-simulator"} <= {name.split(".")[0] for name in logs}
    assert "SMS handed to the gateway" in logs["sms-worker.log"]  # the logs of this very send
    assert [name for name, text in logs.items() if code in text] == []
