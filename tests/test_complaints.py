"""Complaints, emergencies and case status, end to end through the real Rasa and action servers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from pmi.cases import CONSENT_VERSION
from pmi.db import create_engine, create_sessionmaker
from pmi.models import Case, Contact, StaffAlert
from tests.support import Servers, joined, say

pytestmark = pytest.mark.e2e


@pytest.fixture
async def db(servers: Servers) -> AsyncIterator:
    engine = create_engine(servers.database_url)
    yield create_sessionmaker(engine)
    await engine.dispose()


async def cases_of(db, sender_text: str) -> list[Case]:  # type: ignore[no-untyped-def]
    """Cases whose description contains a marker unique to one test."""
    async with db() as s:
        rows = await s.scalars(
            select(Case).where(Case.description.contains(sender_text)).order_by(Case.id)
        )
        return list(rows)


async def cases_by_sender(db, sender: str) -> list[Case]:  # type: ignore[no-untyped-def]
    async with db() as s:
        rows = await s.scalars(
            select(Case)
            .join(Contact, Contact.id == Case.contact_id)
            .where(Contact.channel == "webchat", Contact.channel_user_id == sender)
        )
        return list(rows)


async def test_full_complaint_in_indonesian(chat, db) -> None:
    sender = "cmp-id"
    assert "Apa masalahnya?" in joined(await say(chat, sender, "sy mau lapor masalah kerja"))
    assert "negara dan kota mana" in joined(await say(chat, sender, "1"))
    assert "kota" in joined(await say(chat, sender, "Malaysia"))
    assert "majikan" in joined(await say(chat, sender, "Johor Bahru"))
    assert "Agensi/PT" in joined(await say(chat, sender, "lewati"))
    assert "Ceritakan" in joined(await say(chat, sender, "PT Maju Jaya Abadi"))
    story = "majikan tidak bayar gaji saya sudah 3 bulan [marker-id-1]"
    assert "Petugas menghubungi Anda" in joined(await say(chat, sender, story))
    assert "apakah Anda setuju" in joined(await say(chat, sender, "1"))
    filed = joined(await say(chat, sender, "/affirm"))
    assert "Nomor laporan: PMI-" in filed and "KJRI Johor Bahru" in filed
    [case] = await cases_of(db, "[marker-id-1]")
    assert case.reference in filed
    assert (case.category, case.country, case.city) == ("unpaid_wages", "MY", "Johor Bahru")
    assert (case.employer, case.agency) == (None, "PT Maju Jaya Abadi")
    assert case.mission_code == "KJRI-JOHOR-BAHRU" and case.status == "new"
    assert case.consent_version == CONSENT_VERSION and case.consent_at is not None
    assert case.contact_method == "chat" and case.language == "id"
    async with db() as s:
        alerts = (await s.scalars(select(StaffAlert).where(StaffAlert.case_id == case.id))).all()
    assert [a.mission_code for a in alerts] == ["KJRI-JOHOR-BAHRU"]


async def test_full_complaint_in_english_with_a_phone_number(chat, db) -> None:
    sender = "cmp-en"
    assert "What is the problem?" in joined(
        await say(chat, sender, "I want to file a complaint about my agency")
    )
    assert "In which country" in joined(await say(chat, sender, "2"))
    assert "city" in joined(await say(chat, sender, "Taiwan"))
    await say(chat, sender, "Taichung")
    await say(chat, sender, "skip")
    await say(chat, sender, "skip")
    story = "the agency keeps my passport and will not give it back [marker-en-1]"
    assert "How should the officer contact you" in joined(await say(chat, sender, story))
    assert "phone number" in joined(await say(chat, sender, "2"))
    assert "do you agree" in joined(await say(chat, sender, "+886 912 345 678"))
    filed = joined(await say(chat, sender, "/affirm"))
    assert "Your report is filed. Reference: PMI-" in filed and "KDEI Taipei" in filed
    [case] = await cases_of(db, "[marker-en-1]")
    assert (case.category, case.country, case.phone) == ("passport_held", "TW", "+886912345678")
    assert case.language == "en" and case.contact_method == "phone"


async def test_cancel_midway_files_nothing(chat, db) -> None:
    sender = "cmp-cancel"
    await say(chat, sender, "mau ngadu")
    await say(chat, sender, "2")
    cancelled = joined(await say(chat, sender, "batal"))
    assert "dibatalkan" in cancelled
    assert await cases_by_sender(db, sender) == []
    # The next message is a normal question again, not an answer to the form.
    assert "Apa masalahnya?" not in joined(await say(chat, sender, "halo"))


async def test_invalid_answers_are_asked_again_with_an_example(chat) -> None:
    sender = "cmp-invalid"
    await say(chat, sender, "saya mau melaporkan masalah")
    bad_problem = joined(await say(chat, sender, "xyz"))
    assert "nomor 1 sampai 11" in bad_problem
    await say(chat, sender, "3")
    bad_country = joined(await say(chat, sender, "12345"))
    assert "belum saya kenali" in bad_country and "Malaysia" in bad_country
    await say(chat, sender, "Hong Kong")
    await say(chat, sender, "Kowloon")
    await say(chat, sender, "lewati")
    await say(chat, sender, "lewati")
    assert "Ceritakan dengan beberapa kata" in joined(await say(chat, sender, "ok"))
    await say(chat, sender, "batal")


async def test_no_consent_stores_nothing_but_gives_hotlines(chat, db) -> None:
    sender = "cmp-noconsent"
    await say(chat, sender, "sy mau lapor")
    await say(chat, sender, "9")
    await say(chat, sender, "Singapura")
    await say(chat, sender, "Jurong")
    await say(chat, sender, "lewati")
    await say(chat, sender, "lewati")
    await say(chat, sender, "saya ingin pulang tapi tidak diizinkan [marker-nc-1]")
    await say(chat, sender, "1")
    answer = joined(await say(chat, sender, "/deny"))
    assert "tidak disimpan" in answer and "+62 21 2924 4800" in answer
    assert await cases_of(db, "[marker-nc-1]") == []
    assert await cases_by_sender(db, sender) == []


async def test_emergency_in_one_message(chat, db) -> None:
    sender = "emg-tw"
    first = joined(await say(chat, sender, "tolong sy dipukul majikan di taipei [marker-em-1]"))
    assert "KDEI Taipei: +886 901 132 000" in first and "PMI-" in first
    assert ": 1955" in first  # Taiwan's labour ministry line, named as such
    # Country and place are known from the message: the first question is the safety one.
    assert "Di mana Anda sekarang?" not in first and "aman kalau petugas" in first
    [case] = await cases_of(db, "[marker-em-1]")
    assert (case.priority, case.category) == ("urgent", "emergency")
    assert case.mission_code == "KDEI-TAIPEI"
    unsafe = joined(await say(chat, sender, "/deny"))
    assert "menghubungi Anda dengan aman" in unsafe
    done = joined(await say(chat, sender, "lewati"))
    assert case.reference in done
    async with db() as s:
        stored = await s.get(Case, case.id)
    assert stored is not None
    assert stored.city == "Taipei" and stored.safe_to_reply == "no"
    assert stored.safe_contact == "none"  # "lewati": no safe way; the officer is told


async def test_emergency_without_a_country_asks_only_for_it_then_reroutes(chat, db) -> None:
    sender = "emg-unknown"
    first = joined(await say(chat, sender, "help me please I am locked in the house [marker-em-2]"))
    assert "+62 812 9007 0027" in first and "In which country" in first
    [case] = await cases_of(db, "[marker-em-2]")
    assert case.mission_code == "NATIONAL-CRISIS"
    rerouted = joined(await say(chat, sender, "Hong Kong"))
    assert "KJRI Hong Kong" in rerouted and "Where are you now?" in rerouted
    async with db() as s:
        stored = await s.get(Case, case.id)
        alerts = (await s.scalars(select(StaffAlert).where(StaffAlert.case_id == case.id))).all()
    assert stored is not None and stored.mission_code == "KJRI-HONG-KONG"
    assert [a.mission_code for a in alerts] == ["NATIONAL-CRISIS", "KJRI-HONG-KONG"]
    await say(chat, sender, "cancel")


async def test_case_status_only_for_the_worker_who_filed_it(chat, db) -> None:
    owner, stranger = "status-owner", "status-stranger"
    await say(chat, owner, "tolong saya disekap agen di johor [marker-st-1]")
    await say(chat, owner, "batal")
    [case] = await cases_of(db, "[marker-st-1]")
    mine = joined(await say(chat, owner, f"status laporan {case.reference} gmn"))
    assert case.reference in mine and "baru diterima" in mine
    listed = joined(await say(chat, owner, "cek status laporan sy"))
    assert case.reference in listed
    theirs = joined(await say(chat, stranger, f"status laporan {case.reference} gmn"))
    unknown = joined(await say(chat, stranger, "status laporan PMI-ZZZZZZ gmn"))
    assert case.reference not in theirs
    assert theirs == unknown
