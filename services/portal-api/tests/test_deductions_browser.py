"""The page script in Chromium: Mine lønnstrekk shows a line the payroll-worker has just recorded,
once the portal's read model has it, without the employee reloading the page."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

from mport_shared.events import PayrollDeductionRecorded
from playwright.async_api import Browser, expect

from .conftest import Portal, deduction_line, payroll_event, publish
from .test_live_progress_browser import browser, pytestmark, watch_errors
from .test_pages import served

__all__ = ["browser", "pytestmark"]


async def test_a_new_deduction_appears_on_mine_lonnstrekk_by_itself(portal: Portal, browser: Browser) -> None:
    errors: list[str] = []
    async with served(portal.app) as base:
        context = await browser.new_context(locale="nb-NO")
        page = watch_errors(await context.new_page(), errors)
        await page.goto(f"{base}/lonnstrekk")
        await page.get_by_role("button", name=re.compile("^Logg på som Kari Nordmann")).click()
        await expect(page.get_by_role("heading", level=1)).to_have_text("Mine lønnstrekk")
        await expect(page.locator("html")).to_have_attribute("data-live", "ready")
        await expect(page.get_by_text("Du har ingen lønnstrekk.")).to_be_visible()

        line = deduction_line(uuid.uuid4())
        await publish(
            portal.amqp_url, payroll_event(PayrollDeductionRecorded(line=line, recorded_at=datetime.now(UTC)))
        )

        row = page.locator(f"tr[data-line-id='{line.line_id}']")
        await expect(row).to_contain_text("Ekstra Data 15GB 01.12.2026", timeout=15_000)
        await expect(row).to_contain_text("149,00 kr")
        await expect(page.locator("section[data-period='2026-12'] [data-role=total]")).to_have_text(
            "149,00 kr"
        )
        await context.close()
    assert errors == []
