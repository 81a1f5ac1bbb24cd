"""The dashboard and the CSV download in a real browser (Debian chromium)."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import expect

from pmi.models import Priority
from tests.console_helpers import browser_login, console_client, new_case


@pytest.fixture
async def console(app_db: str) -> AsyncIterator[TestClient]:
    async with console_client(app_db) as client:
        yield client


@pytest.mark.e2e
async def test_mission_staff_see_their_dashboard_and_download_csv(console, browser) -> None:
    mine = await new_case(console, "MY", "Kuala Lumpur", priority=Priority.URGENT, phone="+6012")
    other = await new_case(console, "TW")
    context = await browser.new_context(
        accept_downloads=True, viewport={"width": 390, "height": 844}
    )
    page = await context.new_page()
    await page.goto(str(console.make_url("/console/login")))
    await browser_login(page, console, "kl_staff")
    await page.click("text=Dasbor")
    await expect(page.locator("#total-cases")).to_have_text("1")
    chart = page.locator("figure.chart", has_text="Kasus per kategori")
    await expect(chart.locator("svg rect")).to_have_count(1)
    await expect(chart.locator("svg")).to_contain_text("Gaji tidak dibayar")
    if os.environ.get("PMI_SCREENSHOTS"):
        await page.screenshot(path=os.environ["PMI_SCREENSHOTS"] + "/dashboard.png", full_page=True)
    await page.click("text=Kasus")
    await page.check("input[name=personal]")
    async with page.expect_download() as info:
        await page.click("text=Unduh CSV")
    download = await info.value
    assert download.suggested_filename.startswith("cases_")
    rows = list(csv.DictReader(io.StringIO((await download.path()).read_text("utf-8-sig"))))
    assert [r["reference"] for r in rows] == [mine.reference]
    assert rows[0]["phone"] == "'+6012" and other.reference not in str(rows)
    await context.close()
