"""Every instruction the bot gives ("tulis ...", "ketik ...", "type ...", "taip ...") works.

The instructions are collected from every text the bot can send (Rasa's responses, the
knowledge base, the app's replies); each one is sent exactly as written, in the state of
the conversation where the bot gives it, end to end through the real Rasa and action
servers. A new instruction without a case here fails the first test.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from pmi.db import create_engine, create_sessionmaker
from pmi.models import Case, Contact
from tests.support import ROOT, Servers, joined, say

pytestmark = pytest.mark.e2e
SOURCES = [
    *sorted((ROOT / "rasa_project" / "domain").glob("*.yml")),
    *sorted((ROOT / "data" / "knowledge").glob("*.yml")),
    ROOT / "data" / "replies.yml",
]
QUOTED = re.compile(r"\b(?:tulis|ketik|type|taip)\s+\"([^\"]+)\"", re.IGNORECASE)
COMMAND = re.compile(r"\b(?:tulis|ketik|type|taip)\s+(/[a-z_]+|STOPINFO)\b", re.IGNORECASE)


def _texts(node: object) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [t for v in node.values() for t in _texts(v)]
    if isinstance(node, list):
        return [t for v in node for t in _texts(v)]
    return []


def instructions() -> set[str]:
    found: set[str] = set()
    for path in SOURCES:
        for text in _texts(yaml.safe_load(Path(path).read_text(encoding="utf-8"))):
            found |= {m.group(1) for m in QUOTED.finditer(text)}
            found |= {m.group(1) for m in COMMAND.finditer(text)}
    return found


@dataclass(frozen=True)
class Scenario:
    """Where the bot gives the instruction (messages sent first) and what it promises."""

    before: tuple[str, ...]
    expect: tuple[str, ...]  # every one of these is in the reply
    handoff: bool = False  # the conversation is with a person afterwards
    extra: dict = field(default_factory=dict)


EMERGENCY = ("PMI-", "+62 812 9007 0027")
ID_FORM = ("sy mau lapor", "1", "Malaysia", "Kuala Lumpur")  # at the employer question
EN_FORM = ("I want to report a problem", "1", "Malaysia", "Kuala Lumpur")
MS_EMERGENCY = ("tolong saya, majikan kurung saya dalam bilik, saya di malaysia",)
ID_UNSAFE = ("tolong sy dikunci majikan di taipei", "tidak")
EN_UNSAFE = ("help me, my employer locked me in, i am in taipei", "no")
MS_UNSAFE = ("tolong saya, majikan kurung saya dalam bilik di johor bahru", "tidak")
CASES: dict[str, Scenario] = {
    "darurat": Scenario((), EMERGENCY),
    "emergency": Scenario(("hello",), EMERGENCY),
    "kecemasan": Scenario((), EMERGENCY),
    "mau lapor": Scenario((), ("mencatat laporan Anda", "Apa masalahnya?")),
    "I want to report": Scenario(("hello",), ("I will take your report",)),
    "lewati": Scenario(ID_FORM, ("Agensi/PT",)),
    "skip": Scenario(EN_FORM, ("agency",)),
    "batal": Scenario(("sy mau lapor", "1"), ("dibatalkan",)),
    "lanjut laporan": Scenario(
        ("mau lapor", "5", "gimana cara kirim uang ke indonesia?", "nanti"),
        ("Anda bekerja di negara dan kota mana?",),
    ),
    "continue report": Scenario(
        ("I want to report a problem", "5", "how do I send money home?", "later"),
        ("In which country and city",),
    ),
    "ubah kota": Scenario(
        ("sy mau lapor gaji sy dipotong agen di kuala lumpur", "lewati", "lewati", "1"),
        ("Di kota atau daerah mana?",),
    ),
    "change city": Scenario(
        ("I want to report, my agency charges illegal fees in Kuala Lumpur", "skip", "skip", "1"),
        ("In which city or area?",),
    ),
    "cancel": Scenario(("I want to report a problem", "1"), ("cancelled",)),
    "langkau": Scenario(MS_EMERGENCY, ("Selamatkah jika pegawai",)),
    "tidak ada": Scenario(ID_UNSAFE, ("PMI-", "Terima kasih")),
    "none": Scenario(EN_UNSAFE, ("PMI-", "Thank you")),
    "tiada": Scenario(MS_UNSAFE, ("PMI-", "Terima kasih")),
    "aman": Scenario((*ID_UNSAFE, "tidak ada"), ("bisa mengirim pesan ke chat ini lagi",)),
    "safe": Scenario((*EN_UNSAFE, "none"), ("may send messages to this chat again",)),
    "selamat": Scenario((*MS_UNSAFE, "tiada"), ("boleh menghantar mesej",)),
    "petugas": Scenario((), (), handoff=True),
    "mau bicara dengan petugas": Scenario((), (), handoff=True),
    "officer": Scenario(("hello",), (), handoff=True),
    "talk to a person": Scenario(("hello",), (), handoff=True),
    "pegawai": Scenario(("hai, apa khabar",), (), handoff=True),
    "bantuan": Scenario((), ("Saya bisa bantu soal",)),
    "help": Scenario(("hello",), ("I can help with",)),
    "status {reference}": Scenario(
        ("tolong sy dipukul majikan di taipei", "batal"), ("baru diterima",)
    ),
    "/hapus": Scenario(("halo",), ("Hapus semua data Anda",)),
    "/delete": Scenario(("hello",), ("Delete all your data",)),
    "/info": Scenario(("halo",), ("STOPINFO",)),
    "STOPINFO": Scenario(("halo", "/info"), ("tidak akan menerima info lagi",)),
}


def test_every_instruction_the_bot_gives_has_a_case_here() -> None:
    assert instructions() == set(CASES)


@pytest.fixture
async def db(servers: Servers) -> AsyncIterator:
    engine = create_engine(servers.database_url)
    yield create_sessionmaker(engine)
    await engine.dispose()


async def _reference(db, sender: str) -> str:  # type: ignore[no-untyped-def]
    async with db() as s:
        case = await s.scalar(
            select(Case)
            .join(Contact, Contact.id == Case.contact_id)
            .where(Contact.channel_user_id == sender)
            .order_by(Case.id.desc())
            .limit(1)
        )
    assert case is not None
    return case.reference


@pytest.mark.parametrize("instruction", sorted(CASES))
async def test_the_instruction_does_what_it_promises(chat, db, instruction) -> None:
    case = CASES[instruction]
    sender = "instr-" + re.sub(r"[^a-z0-9]+", "-", instruction.lower()).strip("-")
    for text in case.before:
        await say(chat, sender, text)
    text = instruction
    if "{reference}" in instruction:
        text = instruction.format(reference=await _reference(db, sender))
    reply = joined(await say(chat, sender, text))
    for expected in case.expect:
        assert expected in reply, (instruction, reply)
    assert "belum mengerti" not in reply and "did not understand" not in reply, reply
    if case.handoff:
        async with db() as s:
            contact = await s.scalar(select(Contact).where(Contact.channel_user_id == sender))
        assert contact is not None and contact.handoff, reply
