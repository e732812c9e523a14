"""The page script in Chromium: an order's way through the carrier shows live, without a reload
("Bestiller …", then "Under behandling hos operatøren" with the expected date, then the reason
it failed), on Abonnement and in Mine bestillinger. The whole system's browser tests are in
tests/browser; this one plays the order-worker's part on the bus, so it can send what a carrier
rarely does on demand (a new expected date, a missed deadline)."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from mport_shared.events import OrderFailed, OrderFailureCode, OrderProgressed, OrderSubmitted
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from .conftest import Portal, publish, snapshot, worker_event
from .test_pages import served

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.integration,
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() and not os.environ.get("CI"),
        reason=f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)",
    ),
]
DEADLINE = "Operatøren ble ikke ferdig med bestillingen i tide. Du blir ikke trukket noe."


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        yield chromium
        await chromium.close()


def watch_errors(page: Page, errors: list[str]) -> Page:
    page.on("pageerror", lambda error: errors.append(str(error)))
    return page


async def order_tvilling(page: Page, base: str) -> dict[str, Any]:
    tvilling = page.locator("[data-orderable][data-product='tvilling']")
    await tvilling.get_by_role("button", name="Bestill").click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_role("button", name="Ok").click()
    await expect(dialog).to_be_hidden()
    orders: list[dict[str, Any]] = await (await page.request.get(f"{base}/api/v1/orders")).json()
    return next(o for o in orders if o["status"] == "received")


async def open_page(context: BrowserContext, url: str, errors: list[str]) -> Page:
    page = watch_errors(await context.new_page(), errors)
    await page.goto(url)
    await expect(page.locator("html")).to_have_attribute("data-live", "ready")
    return page


async def test_the_carriers_progress_and_a_missed_deadline_show_live(
    portal: Portal, browser: Browser
) -> None:
    errors: list[str] = []
    async with served(portal.app) as base:
        context = await browser.new_context(locale="nb-NO")
        page = watch_errors(await context.new_page(), errors)
        await page.goto(f"{base}/abonnement")
        await page.get_by_role("button", name=re.compile("^Logg på som Kari Nordmann")).click()
        await expect(page.locator("html")).to_have_attribute("data-live", "ready")
        await page.evaluate("() => { window.__noReload = 'still here'; }")
        await page.get_by_role("button", name="Tilgjengelige tjenester", exact=True).click()
        tvilling = page.locator("[data-orderable][data-product='tvilling']")
        button = tvilling.get_by_role("button")
        message = tvilling.locator("[data-role=message]")
        order = await order_tvilling(page, base)
        await expect(button).to_have_text("Bestiller …")
        orders_page = await open_page(context, f"{base}/bestillinger", errors)
        row = orders_page.locator(f"tr[data-order-id='{order['id']}']")
        await expect(row.locator("[data-role=status]")).to_have_text("Mottatt")

        # With the carrier: 23:30 UTC on 30 November is 1 December in Norway.
        order_id = uuid.UUID(order["id"])
        await publish(
            portal.amqp_url,
            worker_event(
                OrderSubmitted(
                    order_id=order_id,
                    carrier_order_id="c-1",
                    submitted_at=datetime.now(UTC),
                    carrier_state="acknowledged",
                    expected_completion_at=datetime(2026, 11, 30, 23, 30, tzinfo=UTC),
                )
            ),
        )
        await expect(button).to_have_text("Under behandling hos operatøren")
        await expect(button).to_be_disabled()
        await expect(message).to_have_text("Forventet ferdig 01.12.2026")
        await expect(message).to_be_visible()
        await expect(page.locator("#live-status")).to_have_text(
            "Bestillingen av Tvilling er under behandling hos operatøren, forventet ferdig 01.12.2026."
        )
        await expect(row.locator("[data-role=status]")).to_have_text("Under behandling hos operatøren")
        await expect(row.locator("[data-role=expected]")).to_have_text("forventet ferdig 01.12.2026")

        # The carrier moves its date: both pages follow, the status stays.
        await publish(
            portal.amqp_url,
            worker_event(
                OrderProgressed(
                    order_id=order_id,
                    carrier_order_id="c-1",
                    carrier_state="inProgress",
                    expected_completion_at=datetime(2026, 12, 4, 10, tzinfo=UTC),
                    progressed_at=datetime.now(UTC),
                )
            ),
        )
        await expect(message).to_have_text("Forventet ferdig 04.12.2026")
        await expect(row.locator("[data-role=expected]")).to_have_text("forventet ferdig 04.12.2026")
        await expect(button).to_have_text("Under behandling hos operatøren")

        # A reload starts from what the server knows, and the stream's catch-up changes nothing.
        reloaded = await open_page(context, f"{base}/abonnement", errors)
        await reloaded.get_by_role("button", name="Tilgjengelige tjenester", exact=True).click()
        again = reloaded.locator("[data-orderable][data-product='tvilling']")
        await expect(again.get_by_role("button")).to_have_text("Under behandling hos operatøren")
        await expect(again.locator("[data-role=message]")).to_have_text("Forventet ferdig 04.12.2026")
        await reloaded.close()

        # Past the deadline: failed, in words the employee understands, and it can be ordered again.
        await publish(
            portal.amqp_url,
            worker_event(
                OrderFailed(
                    order=snapshot(order),
                    carrier_order_id="c-1",
                    reason="carrier order c-1 not completed by its deadline",
                    reason_code=OrderFailureCode.CARRIER_DEADLINE_PASSED,
                    failed_at=datetime.now(UTC),
                )
            ),
        )
        await expect(button).to_have_text("Bestill")
        await expect(button).to_be_enabled()
        await expect(message).to_have_text(f"Bestillingen feilet: {DEADLINE}")
        await expect(page.locator("#live-status")).to_have_text(
            f"Bestillingen av Tvilling feilet: {DEADLINE}"
        )
        await expect(row.locator("[data-role=status]")).to_have_text("Feilet")
        await expect(row.locator("[data-role=expected]")).to_be_hidden()
        await expect(row.locator("[data-role=reason]")).to_have_text(DEADLINE)

        # Ordered again, from Abonnement: Mine bestillinger adds the row and follows it too.
        second = await order_tvilling(page, base)
        await publish(
            portal.amqp_url,
            worker_event(
                OrderSubmitted(
                    order_id=uuid.UUID(second["id"]),
                    carrier_order_id="c-2",
                    submitted_at=datetime.now(UTC),
                    expected_completion_at=datetime(2026, 12, 9, 10, tzinfo=UTC),
                )
            ),
        )
        new_row = orders_page.locator(f"tr[data-order-id='{second['id']}']")
        await expect(new_row.locator("[data-role=expected]")).to_have_text("forventet ferdig 09.12.2026")
        await expect(button).to_have_text("Under behandling hos operatøren")
        assert await page.evaluate("() => window.__noReload") == "still here"
        await context.close()
    assert errors == []
