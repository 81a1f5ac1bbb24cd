"""Announcements: workers subscribe and stop from the chat; staff write, preview and send."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.keys import SESSIONMAKER
from pmi import announcements, messages
from pmi.models import (
    Announcement,
    AnnouncementSubscription,
    AuditEntry,
    Contact,
    OutboundMessage,
)
from pmi.settings import load_settings
from tests.console_helpers import console_client, csrf_of, login, new_case
from tests.support import joined, say, updates


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("/info", (True, "")),
        ("/info Taiwan", (True, "taiwan")),
        ("/langganan@pmi_bot hong kong", (True, "hong kong")),
        ("Langganan", (True, "")),
        ("STOPINFO", (False, "")),
        ("  stopinfo ", (False, "")),
        ("/berhenti", (False, "")),
        ("stop", None),  # cancels a form: not ours
        ("berhenti", None),
        ("info lowongan ke taiwan", None),
        ("langganan info lowongan dong", None),
    ],
)
def test_commands(text: str, parsed: tuple[bool, str] | None) -> None:
    assert announcements.parse_command(text) == parsed


async def test_subscription_country_from_the_command_or_the_latest_case(sessions) -> None:
    countries = announcements.country_names(load_settings().content.country_names_file)
    async with sessions() as s, s.begin():
        contact = await messages.get_or_create_contact(s, "telegram", "sub-1")
        sub = await announcements.set_subscription(s, contact, True, "taiwan", countries)
        assert sub is not None and sub.country == "TW"
        # Again without a country keeps the one given before; one row per worker.
        await announcements.set_subscription(s, contact, True, "", countries)
        rows = (await s.scalars(select(AnnouncementSubscription))).all()
        assert [(r.contact_id, r.country) for r in rows] == [(contact.id, "TW")]
        await announcements.set_subscription(s, contact, False, "", countries)
        assert (await s.scalars(select(AnnouncementSubscription))).all() == []
        await announcements.set_subscription(s, contact, False, "", countries)  # idempotent


@pytest.fixture
async def client(app_db: str) -> AsyncIterator[TestClient]:
    async with console_client(app_db) as client:
        yield client


async def _say(client: TestClient, sender: str, text: str) -> str:
    return joined(await say(client, sender, text))


async def _set_language(client: TestClient, sender: str, language: str) -> None:
    async with client.app[SESSIONMAKER]() as s, s.begin():
        contact = await messages.get_contact(s, "webchat", sender)
        assert contact is not None
        contact.language = language


async def test_workers_subscribe_and_staff_send_an_announcement(client) -> None:
    # Three workers subscribe from the web chat (the app answers, Rasa is not needed).
    assert "STOPINFO" in await _say(client, "w-tw-id", "/info taiwan")
    assert "STOPINFO" in await _say(client, "w-tw-en", "/info Taiwan")
    await _set_language(client, "w-tw-en", "en")
    await _say(client, "w-my", "/info")  # no country given, no case: every-country only
    await _say(client, "w-gone", "/info taiwan")
    assert "/info" in await _say(client, "w-gone", "STOPINFO")
    # A worker who never subscribed is never reached.
    await new_case(client, "TW")

    await login(client, "kl_staff")
    assert (await client.get("/console/announcements")).status == 404
    await login(client, "operator1")
    token = await csrf_of(client, "/console/announcements")
    form = {"csrf": token, "text_id": "", "text_en": "Job fair", "country": "TW"}
    missing = await client.post("/console/announcements", data=form)
    assert missing.status == 400 and "Indonesian text is required" in await missing.text()
    assert "Job fair" in await missing.text()  # the form keeps what was typed
    bad = {**form, "text_id": "Bursa kerja", "country": "XX"}
    assert (await client.post("/console/announcements", data=bad)).status == 400
    assert (await client.post("/console/announcements", data={**bad, "csrf": "x"})).status == 403
    form.update(text_id="Bursa kerja resmi KDEI Taipei, Minggu 10.00.")
    preview = await client.post("/console/announcements", data=form)
    page = await preview.text()
    assert preview.status == 200 and "/console/announcements/" in str(preview.url)
    assert '<span id="count-id">1</span>' in page and '<span id="count-en">1</span>' in page
    assert '<strong id="total">2</strong>' in page
    assert "Job fair\n\nType STOPINFO to stop these announcements." in page
    queued = select(OutboundMessage).where(OutboundMessage.kind == "announcement")
    async with client.app[SESSIONMAKER]() as s:
        assert (await s.scalars(queued)).all() == []  # the preview sends nothing
    send_url = f"{preview.url.path}/send"
    sent = await client.post(send_url, data={"csrf": token})
    assert sent.status == 200 and '<strong id="recipients">2</strong>' in await sent.text()
    assert (await client.post(send_url, data={"csrf": token})).status == 409
    await login(client, "kl_staff")
    mission_token = await csrf_of(client, "/console/")
    assert (await client.post(send_url, data={"csrf": mission_token})).status == 404
    mission_form = {**form, "csrf": mission_token}
    assert (await client.post("/console/announcements", data=mission_form)).status == 404
    assert (await client.get(str(preview.url.path))).status == 404

    async with client.app[SESSIONMAKER]() as s:
        rows = (
            await s.execute(
                select(Contact.channel_user_id, OutboundMessage.text)
                .join(Contact, Contact.id == OutboundMessage.contact_id)
                .where(OutboundMessage.kind == "announcement")
                .order_by(Contact.channel_user_id)
            )
        ).all()
        announcement = await s.scalar(select(Announcement))
        audit = (
            await s.scalars(
                select(AuditEntry.action).where(AuditEntry.action.like("announcement%"))
            )
        ).all()
    assert [(who, text.splitlines()[0]) for who, text in rows] == [
        ("w-tw-en", "Job fair"),
        ("w-tw-id", "Bursa kerja resmi KDEI Taipei, Minggu 10.00."),
    ]
    assert rows[1][1].endswith("Ketik STOPINFO untuk berhenti menerima info.")
    assert announcement is not None and announcement.status == "sent"
    assert announcement.recipients == 2 and announcement.texts == {
        "id": "Bursa kerja resmi KDEI Taipei, Minggu 10.00.",
        "en": "Job fair",
    }
    assert audit == ["announcement_created", "announcement_sent"]
    # The web chat worker gets it from the outbox on the next poll.
    assert "Bursa kerja resmi" in joined(await updates(client, "w-tw-id"))
