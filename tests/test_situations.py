"""The situation topics (data/knowledge/situations_*.yml): entries, NLU data, domain and rules."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from pmi.knowledge import KnowledgeBase
from pmi.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
RASA = ROOT / "rasa_project"
SITUATIONS = {
    "ask_death_abroad",
    "ask_pregnancy_abroad",
    "ask_undocumented",
    "ask_lost_passport",
    "ask_change_employer",
    "ask_arrest_detention",
    "ask_scam_job",
    "ask_health_insurance",
    "ask_contract_extension",
}
# Words a worker with primary schooling does not know (issue 16); the answers avoid them.
JARGON = re.compile(r"\b(?:remitansi|purna PMI|tenor|BUMDes)\b", re.IGNORECASE)
# Indonesian words in what should be Malaysian Malay ("darurat" is "kecemasan").
NOT_MALAY = re.compile(r"\b(?:darurat|kamu|nggak|gak|tidak ada)\b", re.IGNORECASE)


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return KnowledgeBase.load(load_settings().content.knowledge_dir)


def _variants(kb: KnowledgeBase, intent: str):  # type: ignore[no-untyped-def]
    entry = kb.entries[intent]
    yield "general", entry.general
    yield from entry.countries.items()


def _nlu_examples() -> dict[str, list[str]]:
    examples: dict[str, list[str]] = {}
    for path in sorted((RASA / "data" / "nlu").glob("*.yml")):
        for item in yaml.safe_load(path.read_text(encoding="utf-8")).get("nlu") or []:
            if "intent" in item:
                lines = [line[2:].strip() for line in item["examples"].splitlines() if line]
                examples.setdefault(item["intent"], []).extend(lines)
    return examples


def test_every_situation_has_an_entry_in_indonesian_english_and_malay(kb) -> None:
    assert set(kb.entries) >= SITUATIONS
    for intent in SITUATIONS:
        for code, variant in _variants(kb, intent):
            where = f"{intent}/{code}"
            assert {"id", "en", "ms"} <= set(variant.answers), where
            assert variant.sources and all(s.url.startswith("http") for s in variant.sources), where


def test_situation_answers_use_plain_words_and_malay_that_is_malay(kb) -> None:
    for intent in SITUATIONS:
        for code, variant in _variants(kb, intent):
            assert not JARGON.search(variant.answers["id"]), f"{intent}/{code}/id"
            assert not NOT_MALAY.search(variant.answers["ms"]), f"{intent}/{code}/ms"
            assert "Sumber:" in variant.answers["id"] and "Source:" in variant.answers["en"]


def test_a_danger_now_is_sent_to_the_emergency_path(kb) -> None:
    """Topics where the worker may be in danger tell her the word that opens the emergency path."""
    for intent in ("ask_arrest_detention", "ask_scam_job", "ask_health_insurance"):
        assert '"darurat"' in kb.answer(intent, "id").text, intent
        assert '"emergency"' in kb.answer(intent, "en").text, intent
        assert '"kecemasan"' in kb.answer(intent, "ms").text, intent


def test_country_variants_answer_their_country(kb) -> None:
    assert kb.answer("ask_pregnancy_abroad", "en", "hk").country == "HK"
    assert kb.answer("ask_change_employer", "id", "TW").country == "TW"
    assert kb.answer("ask_undocumented", "ms", "MY").country == "MY"
    assert kb.answer("ask_lost_passport", "id", "MY").country is None  # no variant: the general one


def test_every_situation_is_in_the_domain_and_has_a_rule() -> None:
    domain = yaml.safe_load((RASA / "domain" / "situations.yml").read_text(encoding="utf-8"))
    assert set(domain["intents"]) == SITUATIONS
    rules = yaml.safe_load((RASA / "data" / "rules" / "knowledge.yml").read_text(encoding="utf-8"))
    answered = {
        r["steps"][0]["intent"]
        for r in rules["rules"]
        if r["steps"][1:] == [{"action": "action_answer_knowledge"}]
        and r.get("condition") == [{"active_loop": None}]
    }
    assert answered >= SITUATIONS


def test_every_knowledge_entry_is_answered_by_a_rule(kb) -> None:
    rules = yaml.safe_load((RASA / "data" / "rules" / "knowledge.yml").read_text(encoding="utf-8"))
    answered = {r["steps"][0]["intent"] for r in rules["rules"]}
    assert set(kb.entries) <= answered


def test_every_situation_has_15_to_25_distinct_training_examples() -> None:
    examples = _nlu_examples()
    for intent in SITUATIONS:
        assert 15 <= len(examples.get(intent, [])) <= 25, intent
        assert len(set(examples[intent])) == len(examples[intent]), intent


def test_content_files_stay_under_400_lines() -> None:
    paths = [*(ROOT / "data" / "knowledge").glob("situations*.yml")]
    paths.append(RASA / "data" / "nlu" / "situations.yml")
    for path in paths:
        assert len(path.read_text(encoding="utf-8").splitlines()) < 400, path.name
