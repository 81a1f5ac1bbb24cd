"""The knowledge base and the missions directory, as staff edit them in data/."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
import yaml

from pmi.knowledge import KnowledgeBase
from pmi.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
INFORMATION_INTENTS = {
    "ask_work_abroad_procedure",
    "ask_required_documents",
    "ask_agency_legality",
    "ask_job_openings",
    "ask_training",
    "ask_placement_cost",
    "ask_loan_kur",
    "ask_illegal_fees",
    "ask_worker_rights",
    "ask_embassy_contact",
    "ask_social_security",
    "ask_safe_travel",
    "ask_remittance",
    "ask_return_home",
    "ask_reintegration",
}
FACTS = ROOT.parent / "shared" / "domain" / "pmi-facts.md"
PHONE = re.compile(r"(?<![\w/.-])\+?\d[\d -]{5,}\d")
MAX_ANSWER = 900


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return KnowledgeBase.load(load_settings().content.knowledge_dir)


@pytest.fixture(scope="module")
def missions() -> dict:
    return yaml.safe_load((ROOT / "data" / "missions.yml").read_text(encoding="utf-8"))


def _variants(kb: KnowledgeBase):  # type: ignore[no-untyped-def]
    for intent, entry in kb.entries.items():
        yield intent, None, entry.general
        for code, variant in entry.countries.items():
            yield intent, code, variant


def test_every_information_intent_has_an_entry(kb: KnowledgeBase) -> None:
    assert set(kb.entries) >= INFORMATION_INTENTS


def test_every_entry_is_in_indonesian_and_english_with_sources_and_review_date(kb) -> None:
    for intent, code, variant in _variants(kb):
        where = f"{intent}/{code or 'general'}"
        assert variant.answers.get("id") and variant.answers.get("en"), where
        assert variant.sources, where
        assert all(s.url.startswith("http") for s in variant.sources), where
    for entry in kb.entries.values():
        assert isinstance(entry.reviewed, date)


def test_answers_fit_a_phone_screen_and_end_with_their_source(kb) -> None:
    for intent, code, variant in _variants(kb):
        urls = {s.url for s in variant.sources}
        for lang, text in variant.answers.items():
            where = f"{intent}/{code or 'general'}/{lang}"
            assert len(text) <= MAX_ANSWER, where
            assert any(url in text for url in urls), f"{where}: cites none of its sources"


def test_every_mission_country_has_an_embassy_answer(missions) -> None:
    """The answer is built from the missions directory itself: every mission, its number."""
    from pmi.contacts import ContactSheet, EmergencyLines
    from pmi.knowledge import Replies
    from pmi.missions import Missions
    from pmi.settings import load_settings

    content = load_settings().content
    sheet = ContactSheet(
        Missions.load(content.missions_file, content.places_file),
        EmergencyLines.load(content.emergency_lines_file),
        Replies.load(content.replies_file),
    )
    countries = {c for m in missions["missions"] for c in m["countries"]}
    assert countries, "missions directory is empty"
    for code in countries:
        for language in ("id", "en", "ms"):
            text = sheet.directory(code, language)
            assert text is not None, code
            for mission in (m for m in missions["missions"] if code in m["countries"]):
                assert mission["name"] in text, (code, mission["name"])
                if mission.get("hotline"):
                    assert mission["hotline"] in text and mission["sources"][0] in text


def test_default_route_exists(missions) -> None:
    codes = {m["code"] for m in missions["missions"]}
    assert missions["default_route"] in codes


@pytest.mark.skipif(not FACTS.exists(), reason="shared fact sheet not beside the project")
def test_every_phone_number_comes_from_the_fact_sheet(kb, missions) -> None:
    """Answers quote only numbers of the fact sheet; the missions directory and the emergency
    lines cite a source for each of theirs (tests/test_contacts.py)."""
    facts = re.sub(r"\D", "", FACTS.read_text(encoding="utf-8"))
    texts = [t for _, _, v in _variants(kb) for t in v.answers.values()]
    for text in texts:
        for number in PHONE.findall(text):
            digits = re.sub(r"\D", "", number)
            if len(digits) >= 7:
                assert digits in facts, f"phone number not in the fact sheet: {number}"


def test_language_fallback_and_country_variant(kb) -> None:
    general = kb.answer("ask_embassy_contact", "ms", None)
    assert general is not None and general.language in {"ms", "id"}
    malaysia = kb.answer("ask_worker_rights", "en", "my")
    assert malaysia is not None and malaysia.country == "MY" and malaysia.language == "en"
    assert kb.answer("no_such_intent", "id") is None
