"""In Chromium: the confirm dialog states the deduction and its Ok is recorded as the employee's
acceptance of those very words; Avslutt asks for a confirmation, places the ending, and its
completion takes the add-on off Mine aktive tjenester."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

from mport_shared.events import OrderCompleted
from playwright.async_api import Browser, Page, expect
from portal_api.models import Consent, Order

from .conftest import Portal, publish, snapshot, worker_event
from .test_live_progress_browser import browser as browser  # the fixture, shared
from .test_live_progress_browser import pytestmark as browser_marks
from .test_live_progress_browser import watch_errors
from .test_pages import served

pytestmark = browser_marks


async def orders_of(page: Page, base: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = await (await page.request.get(f"{base}/api/v1/orders")).json()
    return found


async def order_through_the_dialog(page: Page, code: str, deduction: str) -> None:
    row = page.locator(f"[data-orderable][data-product='{code}']")
    await row.get_by_role("button", name="Bestill").click()
    dialog = page.get_by_role("dialog")
    await expect(dialog).to_contain_text(deduction)
    await dialog.get_by_role("button", name="Ok").click()
    await expect(dialog).to_be_hidden()


async def test_ok_accepts_the_stated_deduction_and_avslutt_ends_the_service(
    portal: Portal, browser: Browser
) -> None:
    errors: list[str] = []
    async with served(portal.app) as base:
        context = await browser.new_context(locale="nb-NO")
        page = watch_errors(await context.new_page(), errors)
        await page.goto(f"{base}/abonnement")
        await page.get_by_role("button", name=re.compile("^Logg på som Kari Nordmann")).click()
        await expect(page.locator("html")).to_have_attribute("data-live", "ready")
        await page.get_by_role("button", name="Tilgjengelige tjenester", exact=True).click()

        await order_through_the_dialog(page, "ekstra-data-15gb", "Dette medfører lønnstrekk: 149,00 kr.")
        [top_up] = await orders_of(page, base)
        await order_through_the_dialog(page, "min-sky-10gb", "Dette medfører lønnstrekk: 14,50 kr per måned.")
        min_sky = next(o for o in await orders_of(page, base) if o["product_code"] == "min-sky-10gb")
        now = datetime.now(UTC)
        await publish(
            portal.amqp_url,
            worker_event(OrderCompleted(order=snapshot(min_sky), carrier_order_id="c-1", completed_at=now)),
        )
        await page.get_by_role("button", name="Mine aktive tjenester", exact=True).click()
        active = page.locator("[data-role=active-services]")
        await expect(active).to_contain_text("Min Sky 10GB ekstra")
        await page.reload()  # the Avslutt button comes with the page once the add-on is active
        await page.get_by_role("button", name="Mine aktive tjenester", exact=True).click()
        end = page.get_by_role("button", name="Avslutt Min Sky 10GB ekstra")
        await end.click()
        confirm = page.get_by_role("dialog")
        await expect(confirm).to_contain_text("Vil du avslutte Min Sky 10GB ekstra?")
        await expect(confirm).to_contain_text("lønnstrekket for den stopper fra neste lønnsperiode")
        await confirm.get_by_role("button", name="Kanseller").click()
        await expect(confirm).to_be_hidden()
        assert all(o["action"] != "delete" for o in await orders_of(page, base))  # cancelled: no order
        await end.click()
        await confirm.get_by_role("button", name="Ok").click()
        await expect(confirm).to_be_hidden()
        await expect(end).to_have_text("Avsluttes …")
        await expect(end).to_be_disabled()
        ending = next(o for o in await orders_of(page, base) if o["action"] == "delete")
        delete = snapshot(ending).model_copy(update={"action": "delete"})
        await publish(
            portal.amqp_url,
            worker_event(OrderCompleted(order=delete, carrier_order_id="c-2", completed_at=now)),
        )
        await expect(active).not_to_contain_text("Min Sky 10GB ekstra")
        await expect(page.locator("#live-status")).to_have_text("Min Sky 10GB ekstra er avsluttet.")
        await context.close()
    assert errors == []
    assert (ending["ends_order_id"], ending["product_code"]) == (min_sky["id"], "min-sky-10gb")
    async with portal.app.state.runtime.sessions() as session:
        order = await session.get(Order, uuid.UUID(top_up["id"]))
        assert order is not None
        assert order.consent_id is not None
        consent = await session.get(Consent, order.consent_id)
    assert consent is not None
    assert (consent.text, consent.amount_ore) == ("Dette medfører lønnstrekk: 149,00 kr.", 14_900)
