"""The administrator in a real browser against the whole running system: Ingrid Berg signs in with
Bruk jobbkonto, opens ANSATTE, corrects Kari's number through Bekreft endring, sees it in
ENDRINGSLOGG, and Kari's open session has ended. Every admin page passes axe-core (WCAG 2.1 A/AA
and best practices), on a desktop and on a phone."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from mport_shared.devstack import Stack
from playwright.async_api import Browser, Page, expect

from . import test_portal
from .test_portal import PHONE, assert_accessible, browser, page, shot, sign_in, stack

__all__ = ["browser", "page", "stack"]  # the fixtures, shared with the employee's browser tests

# The same marks: browser, and skipped on a developer's machine without Chromium (not in CI).
pytestmark = test_portal.pytestmark


@pytest.fixture
async def kari_tab(browser: Browser, stack: Stack) -> AsyncIterator[Page]:
    """Kari signed in in a browser of her own."""
    context = await browser.new_context(locale="nb-NO")
    tab = await context.new_page()
    await sign_in(tab, stack, "Kari Nordmann")
    yield tab
    await context.close()


async def test_ingrid_corrects_kari_s_number_and_sees_it_in_the_endringslogg(
    page: Page, stack: Stack, kari_tab: Page
) -> None:
    portal = stack.url("portal-api")
    await sign_in(page, stack, "Ingrid Berg", live=False)
    await page.get_by_role("navigation").get_by_role("link", name="ANSATTE").click()
    await expect(page.get_by_role("heading", name="Ansatte", level=1)).to_be_visible()
    kari_row = page.locator("tr", has_text="Kari Nordmann")
    await expect(kari_row).to_contain_text("4791234567")
    await expect(kari_row).to_contain_text("Aktiv")
    await assert_accessible(page, "Ansatte")
    await shot(page, "admin-1-ansatte")

    await kari_row.get_by_role("link", name="Kari Nordmann").click()
    await expect(page.get_by_role("heading", name="Kari Nordmann", level=1)).to_be_visible()
    await assert_accessible(page, "an employee's page")
    field = page.get_by_label("Riktig telefonnummer")
    await field.fill("+47 998 87 766")
    await page.get_by_role("button", name="Rett nummer").click()

    confirm = page.locator("section", has=page.get_by_role("heading", name="Bekreft endring"))
    await expect(confirm).to_contain_text("4791234567")
    await expect(confirm).to_contain_text("4799887766")
    await expect(confirm).to_contain_text("Kari Nordmann blir logget ut på alle enheter.")
    await assert_accessible(page, "Bekreft endring")
    await shot(page, "admin-2-bekreft-endring")
    await confirm.get_by_role("button", name="Bekreft").click()

    await expect(page.get_by_role("status").filter(has_text="Endringen er lagret.")).to_be_visible()
    await expect(page.locator("[data-role=msisdn]")).to_have_text("4799887766")
    await expect(page.locator("[data-role=verified]")).to_have_text("Ikke bekreftet")
    await expect(page.locator("section[data-section=sms-refusals]")).to_contain_text("Avviste SMS-er")

    await page.get_by_role("navigation").get_by_role("link", name="ENDRINGSLOGG").click()
    entry = page.locator("tbody tr").first
    await expect(entry).to_contain_text("Ingrid Berg")
    await expect(entry).to_contain_text("Kari Nordmann")
    await expect(entry).to_contain_text("Telefonnummer: 4791234567 → 4799887766")
    await assert_accessible(page, "Endringslogg")
    await shot(page, "admin-3-endringslogg")

    # Kari's session ended with the correction: her next page is the sign-in page, saying so.
    await kari_tab.goto(f"{portal}/abonnement")
    await expect(kari_tab).to_have_url(re.compile(r"/logg-inn"))
    await expect(kari_tab.get_by_text("Økten din er avsluttet.")).to_be_visible()


async def test_on_a_phone_a_refused_number_is_marked_and_the_admin_pages_pass_axe(
    page: Page, stack: Stack
) -> None:
    assert page.viewport_size == PHONE
    await sign_in(page, stack, "Ingrid Berg", live=False)
    portal = stack.url("portal-api")
    await page.goto(f"{portal}/admin/ansatte")
    await assert_accessible(page, "Ansatte on a phone")
    await page.get_by_role("link", name="Håkon Hafell").click()
    await page.get_by_label("Riktig telefonnummer").fill("12ab")
    await page.get_by_role("button", name="Rett nummer").click()
    await expect(page.get_by_role("alert")).to_contain_text("Telefonnummeret er ikke gyldig")
    await expect(page.get_by_label("Riktig telefonnummer")).to_have_attribute("aria-invalid", "true")
    await assert_accessible(page, "a refused number on a phone")
    await page.get_by_role("button", name="Slå av selvbetjening").click()
    await page.get_by_role("button", name="Bekreft").click()
    await expect(page.locator("[data-role=self-service]")).to_have_text("Slått av")
    await page.goto(f"{portal}/admin/endringslogg?lang=en")
    await expect(page.locator("tbody tr").first).to_contain_text("Self-service allowed: yes → no")
    await assert_accessible(page, "the audit log in English on a phone")
