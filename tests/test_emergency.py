"""Emergencies, possible danger and self-harm, end to end through the real Rasa and action
servers, typed the way workers type (issue: triage, not a trip-wire)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from pmi.db import create_engine, create_sessionmaker
from pmi.models import Case, Contact, InboundMessage, StaffAlert
from tests.support import Servers, joined, say

pytestmark = pytest.mark.e2e
ERRORS = (
    "Mohon jawab",
    "bukan nomor telepon",
    "belum saya kenali",
    "Please answer",
    "does not look",
)


@pytest.fixture
async def db(servers: Servers) -> AsyncIterator:
    engine = create_engine(servers.database_url)
    yield create_sessionmaker(engine)
    await engine.dispose()


async def cases_of(db, sender: str) -> list[Case]:  # type: ignore[no-untyped-def]
    async with db() as s:
        rows = await s.scalars(
            select(Case)
            .join(Contact, Contact.id == Case.contact_id)
            .where(Contact.channel == "webchat", Contact.channel_user_id == sender)
            .order_by(Case.id)
        )
        return list(rows)


async def alerts_of(db, case: Case) -> list[StaffAlert]:  # type: ignore[no-untyped-def]
    async with db() as s:
        return list(await s.scalars(select(StaffAlert).where(StaffAlert.case_id == case.id)))


@pytest.mark.parametrize(
    "text", ["darurat", "emergency", "kecemasan", "SOS", "bahaya", "DARURAT tolong sy"]
)
async def test_each_instruction_word_opens_the_emergency_path(chat, db, text) -> None:
    sender = f"word-{text.replace(' ', '-')}"
    reply = joined(await say(chat, sender, text))
    assert "PMI-" in reply and "+62 812 9007 0027" in reply, reply
    [case] = await cases_of(db, sender)
    assert (case.priority, case.category) == ("urgent", "emergency")
    assert [a.reason for a in await alerts_of(db, case)] == ["new_urgent"]


async def test_an_instruction_word_in_the_middle_of_a_complaint_wins(chat, db) -> None:
    sender = "word-in-form"
    await say(chat, sender, "sy mau lapor")
    assert "negara" in joined(await say(chat, sender, "1"))
    reply = joined(await say(chat, sender, "darurat"))
    assert "PMI-" in reply and "Petugas" in reply
    [case] = await cases_of(db, sender)
    assert case.priority == "urgent"


async def test_the_first_reply_uses_the_place_named_and_shows_no_error(chat, db) -> None:
    sender = "first-reply"
    text = "tolong sy dipukul majikan di kuching malaysia, paspor ditahan, sy dikunci di rumah"
    replies = await say(chat, sender, text)
    first = joined(replies)
    assert not any(error in first for error in ERRORS), first
    assert "KJRI Kuching" in first and "KBRI Kuala Lumpur, +60 17-668 8032" in first
    assert "Polisi dan ambulans setempat: 999" in first
    assert "negara mana" not in first  # the country was said
    assert "Di mana Anda sekarang?" not in first  # so was the place
    assert "aman kalau petugas mengirim pesan" in first  # the first real question
    [case] = await cases_of(db, sender)
    assert (case.country, case.mission_code) == ("MY", "KJRI-KUCHING")


async def test_johor_bahru_goes_to_its_consulate(chat, db) -> None:
    sender = "route-jb"
    first = joined(await say(chat, sender, "help me my employer beat me, i am in johor bahru"))
    assert "KJRI Johor Bahru" in first
    [case] = await cases_of(db, sender)
    assert case.mission_code == "KJRI-JOHOR-BAHRU"


async def test_a_location_answer_reroutes_to_the_consulate(chat, db) -> None:
    sender = "route-jeddah"
    first = joined(await say(chat, sender, "tolong sy dikunci di kamar sama majikan"))
    assert "negara mana" in first
    await say(chat, sender, "Arab Saudi")
    moved = joined(await say(chat, sender, "di rumah majikan di jeddah dekat pasar"))
    assert "KJRI Jeddah" in moved
    [case] = await cases_of(db, sender)
    assert case.mission_code == "KJRI-JEDDAH"


@pytest.mark.parametrize("answer", ["ya", "iya", "/report_emergency"])
async def test_possible_danger_answered_yes_opens_the_path(chat, db, answer) -> None:
    sender = f"possible-yes-{answer.strip('/')}"
    asked = await say(chat, sender, "tolong saya")
    assert "dalam bahaya sekarang?" in joined(asked)
    assert {b["payload"] for r in asked for b in r["buttons"]} >= {"/report_emergency"}
    assert await cases_of(db, sender) == []  # no case, no alert before she says yes
    opened = joined(await say(chat, sender, answer))
    assert "PMI-" in opened
    [case] = await cases_of(db, sender)
    assert case.priority == "urgent" and await alerts_of(db, case)


@pytest.mark.parametrize("answer", ["tidak", "nggak", "no"])
async def test_possible_danger_answered_no_gets_the_real_answer(chat, db, answer) -> None:
    sender = f"possible-no-{answer}"
    asked = joined(await say(chat, sender, "teman saya dipukul majikan, hak pekerja apa aja ya"))
    assert "dalam bahaya sekarang?" in asked
    answered = joined(await say(chat, sender, answer))
    assert "darurat" in answered  # how to come back to the emergency path
    assert "UU 18/2017" in answered  # the rights answer she asked for
    assert await cases_of(db, sender) == []
    async with db() as s:
        flagged = await s.scalar(
            select(InboundMessage.intent)
            .join(Contact, Contact.id == InboundMessage.contact_id)
            .where(Contact.channel_user_id == sender)
            .order_by(InboundMessage.id)
            .limit(1)
        )
    assert flagged == "possible_danger"  # the console lists it


async def test_a_harmless_message_with_an_alarming_word_gets_its_answer(chat, db) -> None:
    sender = "harmless"
    reply = joined(await say(chat, sender, "kalau nanti majikan pukul saya, lapor ke mana?"))
    assert "PMI-" not in reply and "Apakah Anda (atau orang" not in reply
    assert "UU 18/2017" in reply  # the rights, and where to get help
    assert await cases_of(db, sender) == []


@pytest.mark.parametrize(
    ("sender", "text", "expected"),
    [
        ("feel-id", "kangen bgt sm anak2, tiap malam nangis tp aku baik2 aja", 'ketik "petugas"'),
        ("feel-en", "i miss my family so much, feeling homesick", 'type "officer"'),
        ("feel-ms", "rindu sangat dengan mak, penat kerja hari ni", 'taip "pegawai"'),
    ],
)
async def test_a_sad_but_safe_worker_gets_warmth_not_an_alarm(chat, db, sender, text, expected):  # type: ignore[no-untyped-def]
    reply = joined(await say(chat, sender, text))
    assert expected in reply, reply
    assert "PMI-" not in reply and "Apakah Anda (atau orang" not in reply
    assert await cases_of(db, sender) == []


async def test_self_harm_gets_care_crisis_lines_and_a_person(chat, db) -> None:
    sender = "self-harm"
    replies = await say(chat, sender, "sy di hongkong, capek bgt, pengen bundir aja")
    text = joined(replies)
    assert "Anda tidak sendirian" in text and "18111" in text
    assert "Maaf, saya belum mengerti" not in text
    assert {b["payload"] for r in replies for b in r["buttons"]} >= {"/request_human"}
    [case] = await cases_of(db, sender)
    assert (case.category, case.priority, case.country) == ("self_harm", "urgent", "HK")
    assert [a.reason for a in await alerts_of(db, case)] == ["new_urgent"]
    person = joined(await say(chat, sender, "/request_human"))
    assert "petugas" in person.lower()
    async with db() as s:
        contact = await s.scalar(select(Contact).where(Contact.channel_user_id == sender))
    assert contact is not None and contact.handoff


async def test_self_harm_not_now_stays_with_her(chat) -> None:
    sender = "self-harm-later"
    await say(chat, sender, "i want to end my life")
    stay = joined(await say(chat, sender, "no"))
    assert "I am here" in stay and "officer" in stay


async def test_not_safe_to_reply_asks_for_a_safe_way_and_tells_how_to_undo(chat, db) -> None:
    sender = "unsafe"
    first = joined(await say(chat, sender, "tolong sy dikunci majikan di taipei"))
    assert "aman kalau petugas mengirim pesan" in first  # the place is known: no location question
    unsafe = joined(await say(chat, sender, "tidak"))
    assert 'tulis "aman"' in unsafe and "menghubungi Anda dengan aman" in unsafe
    done = joined(await say(chat, sender, "kakak saya Siti 0812 3456 7890, habis jam 9 malam"))
    assert "PMI-" in done
    [case] = await cases_of(db, sender)
    assert case.safe_to_reply == "no" and "Siti" in (case.safe_contact or "")
    async with db() as s:
        contact = await s.scalar(select(Contact).where(Contact.channel_user_id == sender))
    assert contact is not None and contact.unsafe_since is not None
    safe = joined(await say(chat, sender, "aman"))
    assert "bisa mengirim pesan" in safe
    async with db() as s:
        contact = await s.scalar(select(Contact).where(Contact.channel_user_id == sender))
    assert contact is not None and contact.unsafe_since is None
