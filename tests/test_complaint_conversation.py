"""The complaint conversation as workers type it, end to end (real app, Rasa and actions).

Takes what the first message says, checks answers for what they are, answers a question
asked in the middle and resumes, keeps a report for later, corrects a field from the
summary, and routes by city.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from sqlalchemy import select

from pmi.db import create_engine, create_sessionmaker
from pmi.models import Case, Contact
from tests.support import Servers, joined, say

pytestmark = pytest.mark.e2e
CONSENT_ID = "Sebelum dikirim: apakah Anda setuju"
CONSENT_EN = "Before I send it: do you agree"


@pytest.fixture
async def db(servers: Servers) -> AsyncIterator:
    engine = create_engine(servers.database_url)
    yield create_sessionmaker(engine)
    await engine.dispose()


async def case_of(db, sender: str) -> Case | None:  # type: ignore[no-untyped-def]
    async with db() as s:
        return await s.scalar(
            select(Case)
            .join(Contact, Contact.id == Case.contact_id)
            .where(Contact.channel == "webchat", Contact.channel_user_id == sender)
            .order_by(Case.id.desc())
            .limit(1)
        )


async def test_first_message_with_problem_and_place_reaches_consent_in_three_turns(chat, db):
    sender = "cc-kuching"
    first = joined(
        await say(chat, sender, "sy mau lapor, gaji 3 bulan gk dibayar majikan di kuching malaysia")
    )
    # Problem, country, city and the story are taken: the first question is the employer.
    for question in ("Apa masalahnya?", "negara dan kota", "Di kota atau daerah", "Ceritakan"):
        assert question not in first
    assert "nama majikan" in first
    assert "Agensi/PT" in joined(await say(chat, sender, "ga tau"))
    assert "lewat apa?" in joined(await say(chat, sender, "lewati"))
    consent = joined(await say(chat, sender, "chat aja"))
    assert CONSENT_ID in consent
    assert "Masalah: Gaji tidak dibayar" in consent and "Kota: Kuching" in consent
    assert "Negara: Malaysia" in consent and "Majikan: -" in consent
    filed = joined(await say(chat, sender, "iya boleh"))
    assert "Nomor laporan: PMI-" in filed and "KJRI Kuching" in filed
    case = await case_of(db, sender)
    assert case is not None
    assert (case.category, case.country, case.city) == ("unpaid_wages", "MY", "Kuching")
    assert case.mission_code == "KJRI-KUCHING" and case.contact_method == "chat"
    assert case.description and "gaji 3 bulan" in case.description


async def test_a_wrong_city_answer_is_not_stored_and_a_misspelling_is_confirmed(chat, db):
    sender = "cc-city"
    await say(chat, sender, "mau lapor")
    assert "negara dan kota" in joined(await say(chat, sender, "1"))
    assert "Di kota atau daerah mana?" in joined(await say(chat, sender, "malaysia"))
    # A contact method is not a city: asked again, nothing stored.
    again = joined(await say(chat, sender, "lewat chat ini"))
    assert "nama kota atau daerah" in again
    confirm = joined(await say(chat, sender, "kucing"))
    assert "Maksud Anda Kuching, Sarawak?" in confirm
    assert "nama majikan" in joined(await say(chat, sender, "bener"))
    for text in ("lewati", "lewati", "gaji saya belum dibayar", "1"):
        reply = joined(await say(chat, sender, text))
    assert "Kota: Kuching" in reply
    await say(chat, sender, "ya")
    case = await case_of(db, sender)
    assert case is not None and (case.city, case.mission_code) == ("Kuching", "KJRI-KUCHING")


async def test_a_question_in_the_middle_is_answered_then_the_form_resumes(chat, db):
    sender = "cc-aside"
    await say(chat, sender, "sy mau lapor paspor sy ditahan majikan di jeddah")
    aside = joined(await say(chat, sender, "berapa biaya penempatan ke taiwan?"))
    assert "Lanjut laporan?" in aside and len(aside.split("\n")) > 2  # the answer comes first
    assert "nama majikan" in joined(await say(chat, sender, "iya lanjut"))
    status = joined(await say(chat, sender, "status laporan saya"))
    assert "Lanjut laporan?" in status  # not stored as the employer
    assert "nama majikan" in joined(await say(chat, sender, "1"))
    for text in ("Abdullah", "lewati", "2", "+966 55 555 0000"):
        reply = joined(await say(chat, sender, text))
    assert CONSENT_ID in reply and "Majikan: Abdullah" in reply
    await say(chat, sender, "ya setuju")
    case = await case_of(db, sender)
    assert case is not None and case.mission_code == "KJRI-JEDDAH"
    assert (case.category, case.employer, case.phone) == (
        "passport_held",
        "Abdullah",
        "+966555550000",
    )
    assert case.description and "status laporan" not in case.description


async def test_later_keeps_the_report_and_continue_report_resumes_it(chat, db):
    sender = "cc-later"
    first = joined(
        await say(chat, sender, "I want to report, my agency charges me illegal fees every month")
    )
    assert "In which country and city" in first
    aside = joined(await say(chat, sender, "how much does it cost to go to taiwan?"))
    assert "Continue your report?" in aside
    # Later: nothing filed, the answers kept; "continue report" goes on where she stopped.
    reply = joined(await say(chat, sender, "2"))
    assert "continue report" in reply
    assert await case_of(db, sender) is None
    resumed = joined(await say(chat, sender, "continue report"))
    assert "In which country and city" in resumed
    for text in ("Tsuen Wan, Hong Kong", "skip", "skip", "this chat"):
        reply = joined(await say(chat, sender, text))
    assert CONSENT_EN in reply and "Problem: Illegal fees" in reply
    await say(chat, sender, "yes i agree")
    case = await case_of(db, sender)
    assert case is not None and (case.category, case.country) == ("illegal_fees", "HK")
    assert case.mission_code == "KJRI-HONG-KONG"


async def test_a_saved_report_offers_continue_or_start_over(chat, db):
    sender = "cc-draft"
    await say(chat, sender, "mau lapor")
    await say(chat, sender, "5")
    await say(chat, sender, "gimana cara kirim uang ke indonesia?")
    assert "lanjut laporan" in joined(await say(chat, sender, "nanti aja"))
    offer = joined(await say(chat, sender, "sy mau lapor lagi"))
    assert "belum selesai" in offer
    assert "Apa masalahnya?" in joined(await say(chat, sender, "mulai baru"))
    await say(chat, sender, "batal")
    assert await case_of(db, sender) is None


async def test_the_summary_lets_her_correct_a_field(chat, db):
    sender = "cc-correct"
    await say(chat, sender, "sy mau lapor gaji sy dipotong terus sama agen di kuala lumpur")
    for text in ("lewati", "lewati", "1"):
        reply = joined(await say(chat, sender, text))
    assert CONSENT_ID in reply and "Kota: Kuala Lumpur" in reply
    assert "Di kota atau daerah mana?" in joined(await say(chat, sender, "ubah kota"))
    corrected = joined(await say(chat, sender, "johor bahru"))
    assert CONSENT_ID in corrected and "Kota: Johor Bahru" in corrected
    await say(chat, sender, "ya")
    case = await case_of(db, sender)
    assert case is not None and case.mission_code == "KJRI-JOHOR-BAHRU"


async def test_typed_labels_work_for_every_option(chat, db):
    sender = "cc-labels"
    await say(chat, sender, "mau ngadu")
    await say(chat, sender, "Pungutan liar / potongan gaji")  # the label of option 3, typed
    await say(chat, sender, "taiwan")
    await say(chat, sender, "taichung")
    await say(chat, sender, "gk tau")
    await say(chat, sender, "gk tau")
    await say(chat, sender, "agen potong gaji sy 2 bulan")
    assert "Nomor telepon" in joined(await say(chat, sender, "telpon aja kak"))
    consent = joined(await say(chat, sender, "0912 555 000"))
    assert "Masalah: Pungutan liar / potongan gaji" in consent
    await say(chat, sender, "iya boleh")
    case = await case_of(db, sender)
    assert case is not None and case.contact_method == "phone" and case.phone == "0912555000"
    assert (case.category, case.mission_code) == ("illegal_fees", "KDEI-TAIPEI")


async def test_coming_back_after_the_session_ended(chat, db, servers: Servers):
    sender = "cc-back"
    await say(chat, sender, "mau lapor")
    await say(chat, sender, "1")
    await say(chat, sender, "malaysia")  # she is asked for the city, then goes quiet
    async with db() as s:
        contact = await s.scalar(select(Contact).where(Contact.channel_user_id == sender))
    assert contact is not None
    # An hour of silence: Rasa starts a new session at her next message (forced here).
    url = f"{servers.rasa_url}/conversations/{contact.public_id}/execute?token={servers.rasa_token}"
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, json={"name": "action_session_start"}) as resp,
    ):
        assert resp.status == 200, await resp.text()
    offer = joined(await say(chat, sender, "halo"))
    assert "belum selesai" in offer
    assert "Di kota atau daerah mana?" in joined(await say(chat, sender, "1"))
    assert "nama majikan" in joined(await say(chat, sender, "johor bahru"))
    await say(chat, sender, "batal")


async def test_routing_by_city(chat, db):
    for sender, first, mission in (
        ("cc-route-kch", "mau lapor gaji tidak dibayar, saya di kuching", "KJRI-KUCHING"),
        ("cc-route-jb", "mau lapor gaji tidak dibayar, saya di johor bahru", "KJRI-JOHOR-BAHRU"),
        ("cc-route-jed", "mau lapor gaji tidak dibayar, saya di jeddah", "KJRI-JEDDAH"),
    ):
        reply = joined(await say(chat, sender, first))
        for text in ("lewati", "lewati", "1"):
            reply = joined(await say(chat, sender, text))
        assert CONSENT_ID in reply, reply
        await say(chat, sender, "ya")
        case = await case_of(db, sender)
        assert case is not None and case.mission_code == mission, (first, case)


async def test_an_employer_named_in_an_answer_is_not_asked_again(chat, db):
    sender = "cc-employer"
    await say(chat, sender, "mau lapor")
    told = "majikan sy namanya Mrs Lin, gaji gk dibayar 2 bulan"
    assert "negara dan kota" in joined(await say(chat, sender, told))
    asked = joined(await say(chat, sender, "taichung, taiwan"))
    assert "nama majikan" not in asked and "Agensi/PT" in asked
    for text in ("lewati", "chat aja"):
        reply = joined(await say(chat, sender, text))
    assert "Majikan: Mrs Lin" in reply and "Kota: Taichung" in reply
    await say(chat, sender, "ya")
    case = await case_of(db, sender)
    assert case is not None and (case.employer, case.mission_code) == ("Mrs Lin", "KDEI-TAIPEI")


async def test_an_english_summary_names_the_country_in_english(chat, db):
    sender = "cc-english"
    reply = joined(
        await say(chat, sender, "I want to report, my salary not paid 4 months in riyadh")
    )
    for text in ("skip", "skip", "this chat"):
        reply = joined(await say(chat, sender, text))
    assert "Saudi Arabia" in reply and "Arab Saudi" not in reply, reply
    assert "Riyadh" in reply
    await say(chat, sender, "yes")
    case = await case_of(db, sender)
    assert case is not None and (case.country, case.mission_code) == ("SA", "KBRI-RIYADH")
