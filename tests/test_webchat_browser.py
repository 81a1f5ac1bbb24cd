"""The web chat page in a real browser (Debian's chromium driven by Playwright)."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

pytestmark = pytest.mark.e2e


async def test_web_chat_page_chats_in_indonesian_and_english(chat, browser) -> None:
    page = await browser.new_page()
    await page.goto(str(chat.make_url("/")))
    await page.fill("#text", "halo")
    await page.keyboard.press("Enter")
    bot = page.locator(".msg.bot")
    await expect(bot.first).to_contain_text("Halo! Saya asisten", timeout=30_000)
    # Buttons from Rasa are shown and send their payload when clicked.
    await page.get_by_role("button", name="Bisa bantu apa?").click()
    await expect(bot.nth(1)).to_contain_text("Saya bisa bantu soal", timeout=30_000)
    await page.fill("#text", "hello, good morning to you")
    await page.keyboard.press("Enter")
    await expect(bot.nth(2)).to_contain_text("Hello! I am the helpdesk assistant", timeout=30_000)
    # What the worker typed is shown as text, never as HTML.
    await page.fill("#text", "<b>tebal</b>")
    await page.keyboard.press("Enter")
    await expect(page.locator(".msg.user").last).to_have_text("<b>tebal</b>")
    await page.close()
