"""Two-factor login in a real browser: an admin sets up an authenticator at the first
login (QR code and secret on the page, recovery codes once), then logs in with a TOTP code
and with a recovery code. Codes are computed here with pyotp, as a phone would."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pyotp
import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Page, expect

from bot.keys import SESSIONMAKER
from pmi import staff
from tests.console_helpers import PASSWORD, console_client

pytestmark = pytest.mark.e2e  # a real browser, as the console's other browser tests


@pytest.fixture
async def console(app_db: str) -> AsyncIterator[TestClient]:
    async with console_client(app_db) as client:
        async with client.app[SESSIONMAKER]() as s, s.begin():
            await staff.create_user(s, "new_admin", PASSWORD, "admin")
        yield client


async def _password(page: Page, console: TestClient) -> None:
    await page.goto(str(console.make_url("/console/login")))
    await page.fill("input[name=username]", "new_admin")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")


async def _code(page: Page, code: str) -> None:
    await page.fill("input[name=code]", code)
    await page.click("button[type=submit]")


async def _log_out(page: Page) -> None:
    await page.click("text=Keluar")
    await page.wait_for_url("**/console/login")


async def test_an_admin_sets_up_two_factor_login_and_uses_it(console, browser) -> None:
    context = await browser.new_context(viewport={"width": 390, "height": 844})
    page = await context.new_page()
    blocked: list[str] = []  # anything the console's CSP refused (e.g. an external image)
    page.on("console", lambda m: blocked.append(m.text) if "Security Policy" in m.text else None)
    await _password(page, console)
    await page.wait_for_url("**/console/login/enrol")
    qr = page.locator("figure.qr svg")
    await expect(qr).to_be_visible()
    box = await qr.bounding_box()
    assert box is not None and box["width"] >= 150 and box["width"] == box["height"]
    secret = await page.locator("#totp-secret").inner_text()
    totp = pyotp.TOTP(secret)
    await _code(page, "000000")
    await expect(page.locator("p.error")).to_contain_text("Kode salah")
    await _code(page, totp.now())
    codes = await page.locator("#recovery-codes code").all_inner_texts()
    assert len(codes) == 10
    await page.click("#continue")
    await page.wait_for_url("**/console/")
    await expect(page.locator("header nav")).to_contain_text("new_admin")
    await _log_out(page)

    # Next login: the password, then the authenticator's code (the next step: the current
    # one was used to confirm the set-up).
    await _password(page, console)
    await page.wait_for_url("**/console/login/code")
    await _code(page, totp.generate_otp(totp.timecode(datetime.now(UTC)) + 1))
    await page.wait_for_url("**/console/")
    await _log_out(page)

    # A lost phone: a recovery code works once.
    for attempt in range(2):
        await _password(page, console)
        await page.wait_for_url("**/console/login/code")
        await _code(page, codes[0])
        if attempt == 0:
            await page.wait_for_url("**/console/")
            await page.click("text=Akun")
            await expect(page.locator("#codes-left")).to_have_text("9")
            await _log_out(page)
        else:
            await expect(page.locator("p.error")).to_contain_text("Kode salah")
    assert not blocked, blocked
    await context.close()
