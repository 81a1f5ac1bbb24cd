"""Case work in a real browser: take a case, set its next step, let it go overdue (clock
moved), close it with an outcome. Transfer is not built yet (docs/casework-todo.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import expect

from bot.console.context import CLOCK
from tests.console_helpers import browser_login, console_client, new_case


@pytest.fixture
async def console(app_db: str) -> AsyncIterator[TestClient]:
    async with console_client(app_db) as client:
        yield client


@pytest.mark.e2e
async def test_take_next_step_overdue_and_close(console, browser) -> None:
    case = await new_case(console, "MY", "Kuala Lumpur")
    page = await browser.new_page()
    await page.goto(str(console.make_url("/console/")))
    await browser_login(page, console, "kl_staff")
    await expect(page.locator("#unassigned")).to_contain_text("1")
    await page.click(f"text={case.reference}")
    await page.click("#take")
    await expect(page.locator("#owner")).to_have_text("kl_staff")
    await page.fill("input[name=next_action]", "Telepon agensi")
    await page.click("form.next-step button")
    await expect(page.locator("#next-action")).to_have_text("Telepon agensi")
    await expect(page.locator("h1 .late")).to_have_count(0)
    console.app[CLOCK].offset = timedelta(days=8)  # past the weekly follow-up
    await page.reload()
    await expect(page.locator("h1 .late")).to_be_visible()
    await page.select_option("form.close select[name=outcome]", "wages_paid")
    await page.fill("form.close textarea[name=note]", "Gaji dibayar penuh")
    await page.click("form.close button")
    await expect(page.locator("#status")).to_have_text("ditutup")
    await expect(page.locator("ol.timeline")).to_contain_text("[Gaji dibayar]")
    await page.goto(str(console.make_url("/console/?mine=1")))
    await expect(page.locator("table.cases")).to_contain_text(case.reference)
    await page.close()
