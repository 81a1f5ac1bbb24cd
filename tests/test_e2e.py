"""End to end: the app, the real Rasa server with the trained model, the real action server."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import create_app
from devtools.gate import Gate
from pmi import agencies
from pmi.db import create_engine, create_sessionmaker
from pmi.knowledge import KnowledgeBase
from pmi.settings import load_settings
from tests.support import joined, make_settings, say, updates, wait_until

pytestmark = pytest.mark.e2e


async def test_indonesian_greeting(chat) -> None:
    replies = await say(chat, "e2e-id", "halo")
    assert replies, "no reply"
    assert "Halo! Saya asisten helpdesk Pekerja Migran Indonesia" in replies[0]["text"]
    assert {b["payload"] for b in replies[0]["buttons"]} >= {"/help"}


async def test_english_greeting(chat) -> None:
    replies = await say(chat, "e2e-en", "hello, good morning")
    assert replies
    assert replies[0]["text"].startswith("Hello! I am the helpdesk assistant")


async def test_knowledge_answer_comes_with_its_source(chat) -> None:
    replies = await say(chat, "e2e-kb", "gmn cara daftar kerja ke luar negeri yg resmi")
    text = "\n".join(r["text"] for r in replies)
    assert "Sumber:" in text and "http" in text


# One question per situation topic, as a worker types it in Indonesian and in English.
SITUATION_QUESTIONS = [
    ("ask_death_abroad", "gmn cara bawa pulang jenazah sodara dr malaysia"),
    ("ask_death_abroad", "how do we bring my uncle's body home and claim the death benefit"),
    ("ask_pregnancy_abroad", "sy hamil di hongkong, majikan boleh pecat gk"),
    ("ask_pregnancy_abroad", "i am pregnant in taiwan, can my employer send me home"),
    ("ask_undocumented", "sy overstay di malaysia, gmn cara pulang yg resmi"),
    ("ask_undocumented", "i have no papers in malaysia, how can i go home safely"),
    ("ask_lost_passport", "paspor sy ilang di taiwan, gmn bikin SPLP"),
    ("ask_lost_passport", "i lost my passport in hong kong, what do i do"),
    ("ask_change_employer", "gmn cara pindah majikan di taiwan"),
    ("ask_change_employer", "can i change my employer in hong kong"),
    ("ask_arrest_detention", "kalo ditangkep polisi di luar negri, hak sy apa aja"),
    ("ask_arrest_detention", "if the police arrest me in malaysia what rights do i have"),
    ("ask_scam_job", "ada tawaran kerja di kamboja gaji gede, asli gk"),
    ("ask_scam_job", "is a job offer in cambodia with a high salary real"),
    ("ask_health_insurance", "sakit di taiwan biaya rumah sakit siapa yg tanggung"),
    ("ask_health_insurance", "who pays my hospital bill if i get sick in hong kong"),
    ("ask_contract_extension", "kontrak sy mau abis, gmn cara perpanjang di malaysia"),
    ("ask_contract_extension", "how do i renew my contract in taiwan"),
]


@pytest.mark.parametrize(("topic", "question"), SITUATION_QUESTIONS)
async def test_situation_question_gets_its_topic(chat, topic: str, question: str) -> None:
    """The answer is one of the topic's own texts (any variant, any language), with its source."""
    entry = KnowledgeBase.load(load_settings().content.knowledge_dir).entries[topic]
    texts = [
        text
        for variant in (entry.general, *entry.countries.values())
        for text in variant.answers.values()
    ]
    sender = f"e2e-situation-{SITUATION_QUESTIONS.index((topic, question))}"
    reply = joined(await say(chat, sender, question))
    assert any(text in reply for text in texts), f"{question!r} got: {reply[:200]!r}"


async def test_embassy_question_asks_for_the_country_then_answers(chat) -> None:
    asked = await say(chat, "e2e-emb", "nomor kbri brp ya")
    assert any(b["payload"].startswith("/inform") for r in asked for b in r["buttons"])
    answered = await say(chat, "e2e-emb", '/inform{"country": "MY"}')
    assert "Kuala Lumpur" in "\n".join(r["text"] for r in answered)


async def test_messages_sent_while_rasa_is_down_are_answered_in_order(servers) -> None:
    gate = Gate(int(servers.rasa_url.rsplit(":", 1)[1]))
    gate.close()
    app = create_app(make_settings(servers.database_url, gate.url))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        held = await say(client, "e2e-down", "halo")
        assert "sudah kami terima" in held[0]["text"]
        assert await say(client, "e2e-down", "makasih ya") == []
        gate.open()
        later: list[dict] = []

        async def answered() -> bool:
            later.extend(await updates(client, "e2e-down"))
            return len(later) >= 2

        try:
            await wait_until(answered, timeout=30)
        finally:
            gate.stop()
    assert later[0]["text"].startswith("Halo!")
    assert "Sama-sama" in later[1]["text"]


async def test_agency_named_by_the_worker_is_checked_against_the_imported_registry(
    chat, servers
) -> None:
    engine = create_engine(servers.database_url)
    try:
        async with create_sessionmaker(engine)() as s, s.begin():
            rows = agencies.parse_registry(b"nama_perusahaan\nPT. Cahaya Bintang Timur\n")
            record = await agencies.replace_registry(s, rows, "registry.csv")
    finally:
        await engine.dispose()
    date = record.imported_at.strftime("%d-%m-%Y")
    listed = joined(await say(chat, "agency-1", "pt cahaya bintang timur itu resmi gak ya?"))
    assert "ada di daftar resmi P3MI" in listed and date in listed
    unknown = joined(await say(chat, "agency-2", "PT Berkah Sentosa Jaya resmi gak ya min?"))
    assert "tidak saya temukan di daftar resmi" in unknown and date in unknown
