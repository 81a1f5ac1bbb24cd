"""The emergency triage of `pmi/danger.py` with the lexicon and rules of data/danger_lexicon.yml.

These are the rules' own cases (what each is for); how well they do on realistic messages
is measured by `make eval-emergency`, on sets these tests do not copy.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from pmi.danger import CONTEXTS, FEATURES, LexiconError, Triage

LEXICON_FILE = Path(__file__).resolve().parent.parent / "data" / "danger_lexicon.yml"
LEXICON = yaml.safe_load(LEXICON_FILE.read_text("utf-8"))
TRIAGE = Triage(LEXICON)
EMERGENCY = [("report_emergency", 0.95), ("ask_worker_rights", 0.03)]
RIGHTS = [("ask_worker_rights", 0.9), ("report_emergency", 0.05)]


def test_every_pattern_is_a_valid_regex_with_a_language_and_meaning() -> None:
    for section in ("patterns", "self_harm"):
        for item in LEXICON[section]:
            re.compile(item["pattern"])
            assert item.get("lang") in {"id", "en", "ms"} and item.get("meaning"), item
    for item in LEXICON["exclude"]:
        re.compile(item["pattern"])
        assert item.get("meaning"), item


def test_every_rule_names_known_features_and_a_level() -> None:
    assert set(LEXICON["context"]) <= set(CONTEXTS)
    for rule in LEXICON["decision"]["rules"]:
        assert rule["name"] and rule["level"] in {"clear", "self_harm", "possible", "none"}
        assert set(rule.get("when", [])) | set(rule.get("unless", [])) <= FEATURES, rule


def test_a_rule_with_an_unknown_feature_is_refused() -> None:
    broken = {**LEXICON, "decision": {"rules": [{"name": "x", "when": ["typo"], "level": "clear"}]}}
    with pytest.raises(LexiconError):
        Triage(broken)


@pytest.mark.parametrize(
    "text",
    ["darurat", "DARURAT", "emergency", "Emergency!!", "kecemasan", "SOS", "sos!!!", "bahaya",
     "DARURAT tolong sy", "darurattt", "tolong darurat kak", "emergency please help me"],
)  # fmt: skip
def test_words_that_always_open_the_emergency_path(text: str) -> None:
    """The instruction words the bot gives open the path alone or in a short cry for help."""
    decision = TRIAGE.decide(text, [("help", 0.9)])
    assert decision.level == "clear", decision
    assert TRIAGE.is_instruction(text)


@pytest.mark.parametrize(
    "text",
    ["tolong", "tolong saya", "tlg sy kak", "help me", "help me please", "tolonggg", "sy takut"],
)
def test_a_bare_cry_for_help_gets_the_danger_question(text: str) -> None:
    assert TRIAGE.decide(text, [("nlu_fallback", 0.35)]).level == "possible"


@pytest.mark.parametrize("text", ["help", "bantuan", "menu"])
def test_the_menu_word_the_bot_tells_workers_to_type_is_not_a_cry_for_help(text: str) -> None:
    assert TRIAGE.decide(text, [("help", 0.9)]).level == "none"


@pytest.mark.parametrize(
    "text",
    [
        "nomor darurat kbri kuala lumpur berapa",
        "what is the emergency number of the embassy",
        "cuti darurat boleh gak",
        "tombol sos di safe travel itu buat apa",
    ],
)
def test_asking_about_emergency_numbers_or_buttons_is_not_an_instruction(text: str) -> None:
    assert not TRIAGE.is_instruction(text)
    assert TRIAGE.decide(text, RIGHTS).level == "none"


@pytest.mark.parametrize(
    "text",
    ["tolong sy dipukul majikan", "sy dikunci di kamar dr kemarin", "they locked me in the house",
     "saya kena tahan imigresen tadi, sekarang kat lokap",
     "aku kabur, skrg ngumpet di bawah jembatan"],
)  # fmt: skip
def test_danger_now_is_clear(text: str) -> None:
    assert TRIAGE.decide(text, RIGHTS).level == "clear"


@pytest.mark.parametrize(
    "text",
    ["pengen bunuh diri aja", "sy mau bundir", "udah gk mau hidup lagi, pengen nyusul ibu",
     "tali sudah saya siapkan", "i want to kill myself", "kms", "saya nak mati je"],
)  # fmt: skip
def test_self_harm_has_its_own_level(text: str) -> None:
    assert TRIAGE.decide(text, RIGHTS).level == "self_harm"


@pytest.mark.parametrize(
    "text",
    [
        "kalau nanti majikan pukul saya, saya harus lapor ke mana?",  # before departure
        "dulu sy pernah dipukul majikan, bisa klaim gk?",  # a past event, asked about
        "film tentang TKW disiksa majikan itu bagus gak",  # a film
        "ini antrian bikin mati gaya",  # an idiom
        "hp sy mau mati baterainya",  # an object
        "this queue is killing me",
        "kemarin tangan sy luka kena pisau, sudah dijahit, bisa klaim bpjs?",
    ],
)
def test_alarming_words_in_a_harmless_frame_are_not_an_emergency(text: str) -> None:
    assert TRIAGE.decide(text, RIGHTS).level == "none"


def test_the_classifier_alone_can_raise_a_possible_danger() -> None:
    decision = TRIAGE.decide("sy gk kuat lagi disini kak", [("report_emergency", 0.55)])
    assert decision.level == "possible"


def test_someone_elses_story_is_asked_about_not_alarmed() -> None:
    assert TRIAGE.decide("teman sy dipukul majikan", RIGHTS).level == "possible"


def test_the_decision_says_which_rule_and_evidence() -> None:
    decision = TRIAGE.decide("tolong sy dipukul majikan", EMERGENCY).as_dict()
    assert decision["level"] == "clear" and decision["danger_phrase"] == "dipukul"
    assert "danger_words" in decision["features"] and decision["rule"]


def test_the_replaced_design_is_kept_for_comparison() -> None:
    assert TRIAGE.lexicon_override("film tentang TKW disiksa", RIGHTS)  # it alarmed on words
    assert TRIAGE.lexicon_override("apa kabar", EMERGENCY)  # and on the classifier's top
    assert not TRIAGE.lexicon_override("apa kabar", RIGHTS)
