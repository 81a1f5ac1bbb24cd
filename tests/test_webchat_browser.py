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


async def test_the_conversation_lives_in_an_httponly_cookie_and_can_be_started_anew(
    chat, browser
) -> None:
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(str(chat.make_url("/")))
    await page.fill("#text", "halo")
    await page.keyboard.press("Enter")
    bot = page.locator(".msg.bot")
    await expect(bot.first).to_contain_text("Halo! Saya asisten", timeout=30_000)
    [cookie] = [c for c in await context.cookies() if c["name"] == "pmi_chat"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/"
    assert "pmi_chat" not in await page.evaluate("document.cookie")  # no script can read it
    assert await page.evaluate("Object.keys(localStorage)") == []
    first_sender = cookie["value"].split(".")[0]
    # "New conversation": asks first, clears the page, and the next message has a new sender.
    page.once("dialog", lambda dialog: dialog.accept())
    await page.get_by_role("button", name="Percakapan baru").click()
    await expect(page.locator(".msg")).to_have_count(0)
    assert [c for c in await context.cookies() if c["name"] == "pmi_chat"] == []
    await page.fill("#text", "halo")
    await page.keyboard.press("Enter")
    await expect(bot.first).to_contain_text("Halo! Saya asisten", timeout=30_000)
    [cookie] = [c for c in await context.cookies() if c["name"] == "pmi_chat"]
    assert cookie["value"].split(".")[0] != first_sender
    # Dismissing the question keeps the conversation.
    page.once("dialog", lambda dialog: dialog.dismiss())
    await page.get_by_role("button", name="Percakapan baru").click()
    await expect(page.locator(".msg.user")).to_have_count(1)
    await context.close()
