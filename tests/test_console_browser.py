"""The console in a real browser: login, inbox, live urgent alert, case actions."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import expect

from bot.app import create_app
from bot.keys import SESSIONMAKER
from devtools.net import free_port
from pmi import cases, messages, staff
from pmi.missions import Missions
from pmi.models import Priority
from pmi.settings import load_settings
from tests.console_helpers import PASSWORD, browser_login, enable_totp
from tests.support import make_settings


@pytest.fixture
async def console(app_db: str) -> AsyncIterator[TestClient]:
    app = create_app(make_settings(app_db, f"http://127.0.0.1:{free_port()}"))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        async with client.app[SESSIONMAKER]() as s, s.begin():
            await staff.create_user(s, "kl_staff", PASSWORD, "mission", "KBRI-KUALA-LUMPUR")
        await enable_totp(client.app, "kl_staff")
        yield client


async def _urgent_case(client: TestClient, city: str) -> str:
    missions = Missions.load(load_settings().content.missions_file)
    async with client.app[SESSIONMAKER]() as s, s.begin():
        contact = await messages.get_or_create_contact(s, "webchat", f"browser-{city}")
        case = await cases.create_case(
            s,
            conversation_id=contact.public_id,
            category=cases.EMERGENCY,
            mission=missions.route("MY", city),
            priority=Priority.URGENT,
            country="MY",
            city=city,
        )
        return case.reference


@pytest.mark.e2e
async def test_mission_staff_log_in_see_a_live_alert_and_acknowledge(console, browser) -> None:
    first = await _urgent_case(console, "Kuala Lumpur")
    page = await browser.new_page()
    await page.goto(str(console.make_url("/console/")))
    await expect(page).to_have_url(str(console.make_url("/console/login")))
    await browser_login(page, console, "kl_staff")
    await expect(page.locator("table.cases")).to_contain_text(first)
    # A new urgent case appears without reloading the page.
    second = await _urgent_case(console, "Selangor")
    banner = page.locator("#alert-banner")
    await expect(banner).to_be_visible(timeout=15_000)
    await expect(banner).to_contain_text(second)
    await page.click(f"text={first}")
    await page.click("text=Tandai sudah dibaca")
    await expect(page.locator("#status")).to_have_text("sudah dibaca petugas")
    await page.close()
