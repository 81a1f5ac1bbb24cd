"""Human handoff: office hours, and end to end through Rasa, the actions and the app."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pmi import handoff, messages, staff
from pmi.db import create_engine, create_sessionmaker, utcnow
from pmi.settings import HandoffSettings, load_settings
from tests.console_helpers import PASSWORD, csrf_of, login
from tests.support import joined, say, updates

HOURS = HandoffSettings(timezone="Asia/Jakarta", days=[1, 2, 3, 4, 5], start="08:00", end="17:00")


@pytest.mark.parametrize(
    ("utc", "expected"),
    [
        (datetime(2026, 11, 30, 3, 0, tzinfo=UTC), None),  # Monday 10:00 WIB: open
        (datetime(2026, 11, 30, 10, 0, tzinfo=UTC), "2026-12-01 08:00"),  # Monday 17:00 WIB
        (datetime(2026, 11, 28, 3, 0, tzinfo=UTC), "2026-11-30 08:00"),  # Saturday
        (datetime(2026, 11, 29, 23, 30, tzinfo=UTC), "2026-11-30 08:00"),  # Monday 06:30 WIB
    ],
)
def test_next_opening(utc: datetime, expected: str | None) -> None:
    opens = handoff.next_opening(HOURS, utc)
    assert (opens.strftime("%Y-%m-%d %H:%M") if opens else None) == expected


@pytest.mark.e2e
async def test_handoff_to_a_person_in_the_console_and_back_to_the_bot(chat, servers) -> None:
    sender = "handoff-worker"
    opens = handoff.next_opening(load_settings().handoff, utcnow())
    started = joined(await say(chat, sender, "saya mau bicara dengan petugas manusia"))
    if opens is None:
        assert "Saya teruskan chat ini ke petugas" in started
    else:
        assert "Petugas sedang tidak bertugas" in started and opens.strftime("%H:%M") in started
    # The bot is silent now; the message waits for a person.
    assert await say(chat, sender, "halo? gaji saya belum dibayar") == []
    engine = create_engine(servers.database_url)
    try:
        async with create_sessionmaker(engine)() as s, s.begin():
            contact = await messages.get_contact(s, "webchat", sender)
            assert contact is not None and contact.handoff
            public_id = contact.public_id
            await staff.create_user(s, "hotline1", PASSWORD, "operator")
    finally:
        await engine.dispose()
    # An operator finds the conversation in the console and answers.
    await login(chat, "hotline1")
    queue = await (await chat.get("/console/conversations")).text()
    assert public_id[:8] in queue
    page = f"/console/conversations/{public_id}"
    assert "gaji saya belum dibayar" in await (await chat.get(page)).text()
    token = await csrf_of(chat, page)
    reply = {"csrf": token, "text": "Halo, saya petugas KP2MI. Sejak kapan?"}
    assert (await chat.post(f"{page}/message", data=reply)).status == 200
    assert [m["text"] for m in await updates(chat, sender)] == [reply["text"]]
    assert (await chat.post(f"{page}/release", data={"csrf": token})).status == 200
    assert "Percakapan dengan petugas selesai" in joined(await updates(chat, sender))
    assert "Halo! Saya asisten" in joined(await say(chat, sender, "halo"))


@pytest.mark.e2e
async def test_an_instruction_word_during_a_handoff_alerts_a_person_at_once(chat, servers) -> None:
    """The bot is silent in a handoff, but "darurat" still opens the emergency path."""
    from sqlalchemy import select

    from pmi.models import Case, StaffAlert

    sender = "handoff-darurat"
    await say(chat, sender, "saya mau bicara dengan petugas")
    assert await say(chat, sender, "gaji sy blm dibayar") == []
    reply = joined(await say(chat, sender, "DARURAT tolong sy"))
    assert "Petugas sudah diberi tahu sekarang" in reply and "+62 812 9007 0027" in reply
    engine = create_engine(servers.database_url)
    try:
        async with create_sessionmaker(engine)() as s:
            contact = await messages.get_contact(s, "webchat", sender)
            assert contact is not None and contact.handoff  # a person still has the chat
            case = await s.scalar(select(Case).where(Case.contact_id == contact.id))
            assert case is not None and (case.priority, case.category) == ("urgent", "emergency")
            alerts = (
                await s.scalars(select(StaffAlert).where(StaffAlert.case_id == case.id))
            ).all()
            assert [a.reason for a in alerts] == ["new_urgent"]
    finally:
        await engine.dispose()
