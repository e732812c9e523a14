"""Steps 9-12 of the seed guide in Chromium, as Håkon: Bekreft telefonnummer, Send engangskode på
SMS, the SMS's progress live, the code typed, "Ditt telefonnummer er bekreftet.", Ok, and the
self-service box is there. The sms-worker does not run: the test reads the code from the
published message and plays the worker's delivery reports on the bus. axe-core checks each state."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from axe_playwright_python.async_playwright import Axe
from mport_shared.events import VerificationCodeSent, VerificationDelivered
from playwright.async_api import Browser, Page, async_playwright, expect

from .conftest import Portal, publish, worker_event
from .test_pages import served
from .test_verifications_api import sent_codes

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.integration,
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() and not os.environ.get("CI"),
        reason=f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)",
    ),
]
AXE = Axe()
AXE_OPTIONS = {
    "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]},
    "resultTypes": ["violations"],
}


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        yield chromium
        await chromium.close()


async def assert_accessible(page: Page, what: str) -> None:
    results = await AXE.run(page, options=AXE_OPTIONS)
    assert results.violations_count == 0, f"{what} ({page.url}):\n{results.generate_report()}"
    assert len(results.response["passes"]) >= 10, results.response["passes"]


async def test_hakon_confirms_his_number_and_gets_the_self_service_box(
    portal: Portal, browser: Browser
) -> None:
    errors: list[str] = []
    async with served(portal.app) as base:
        context = await browser.new_context(locale="nb-NO")
        page = await context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.goto(f"{base}/abonnement")
        await page.get_by_role("button", name=re.compile("^Logg på som Håkon Hafell")).click()
        # Step 9: no box yet, the link instead.
        await page.get_by_role("link", name="Bekreft telefonnummer").click()
        await expect(
            page.get_by_role("heading", name="Bekreft telefonnummer for Håkon Hafell")
        ).to_be_visible()
        await expect(page.get_by_text("Registrert telefonnummer")).to_be_visible()
        await expect(
            page.get_by_text("Hvis nummeret er feil, vennligst kontakt din mPort administrator.")
        ).to_be_visible()
        await expect(page.get_by_text("Ingrid Berg")).to_be_visible()
        await assert_accessible(page, "Bekreft telefonnummer before a code")
        # Step 10.
        await page.get_by_role("button", name="Send engangskode på SMS").click()
        await expect(page.locator("html")).to_have_attribute("data-live", "ready")
        delivery = page.locator("[data-role=delivery]")
        await expect(delivery).to_have_text("Engangskoden sendes …")
        [(message, _)] = await sent_codes(portal)
        code = message["data"]["code"]
        verification_id = uuid.UUID(message["data"]["verification_id"])
        # The SMS's progress, live, without a reload.
        await page.evaluate("() => { window.__noReload = 'still here'; }")
        now = datetime.now(UTC)
        await publish(
            portal.amqp_url,
            worker_event(
                VerificationCodeSent(verification_id=verification_id, gateway_message_id="k1", sent_at=now)
            ),
        )
        await expect(delivery).to_have_text("SMS-en med engangskoden er sendt.")
        await publish(
            portal.amqp_url,
            worker_event(VerificationDelivered(verification_id=verification_id, delivered_at=now)),
        )
        await expect(delivery).to_have_text("SMS-en med engangskoden er levert til telefonen din.")
        assert await page.evaluate("() => window.__noReload") == "still here"
        await assert_accessible(page, "Bekreft telefonnummer with a code on its way")
        # Step 11: a wrong code first, then the right one.
        field = page.get_by_label("Legg inn engangskode mottatt på SMS")
        await field.fill(f"{(int(code) + 1) % 1_000_000:06d}")
        await page.get_by_role("button", name="Bekreft telefonnummer").click()
        await expect(page.get_by_role("alert")).to_have_text(
            "Feil kode. Du har 4 forsøk igjen med denne koden."
        )
        await assert_accessible(page, "Bekreft telefonnummer after a wrong code")
        await page.get_by_label("Legg inn engangskode mottatt på SMS").fill(code)
        await page.get_by_role("button", name="Bekreft telefonnummer").click()
        # Step 12.
        await expect(page.get_by_text("Ditt telefonnummer er bekreftet.")).to_be_visible()
        await assert_accessible(page, "the number confirmed")
        await page.get_by_role("link", name="Ok").click()
        await expect(page).to_have_url(f"{base}/abonnement")
        await expect(page.get_by_role("region", name="Selvbetjening")).to_be_visible()
        await context.close()
    assert errors == []
