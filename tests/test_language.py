"""Reply-language decisions, the `python -m bot.language` CLI, and Malay readers' replies."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.db import opened
from actions.knowledge import ActionAnswerKnowledge
from bot.language import (
    SWITCH_MARGIN,
    decide_for_new_user,
    decide_language,
    detect,
    detect_scores,
    markers,
)
from pmi.knowledge import KnowledgeBase
from pmi.settings import ROOT, load_settings
from tests.support import joined, say

SUPPORTED = ("id", "en", "ms")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("halo min", "id"),
        ("gmn caranya daftar kerja ke taiwan yg resmi", "id"),
        ("sy udh 3 bulan gk digaji majikan", "id"),
        ("hello, how can I check my agency?", "en"),
        ("my employer keeps my passport, what can I do", "en"),
        ("macam mana nak balik kampung, majikan tak bagi", "ms"),
        ("saya nak tanya pasal gaji tak bayar", "ms"),
        ("agensi ni sah ke?", "ms"),  # Malay question particle
    ],
)
def test_detects_how_workers_write(text: str, expected: str) -> None:
    assert detect(text, SUPPORTED)[0] == expected


def test_words_shared_by_indonesian_and_malay_choose_indonesian_for_a_new_user() -> None:
    # Only Malaysian usage makes a message Malay; the shared words alone say "id or ms".
    assert _decide("saya tanya gaji majikan") == "id"
    assert _decide("saya nak tanya gaji majikan") == "ms"


def _decide(text: str, **kw: str | None) -> str:
    args: dict = {"chosen": None, "sticky": None, "hint": None}
    args.update(kw)
    return decide_language(text, default="id", supported=SUPPORTED, **args)


def test_explicit_choice_wins_over_detection() -> None:
    assert _decide("hello how are you", chosen="id") == "id"
    assert _decide("macam mana nak balik", chosen="en", sticky="id", hint="id") == "en"


@pytest.mark.parametrize("text", ["ok", "1", "ya", "yes", "PMI-7KQ2XR", "oke", "iya", "tq", ""])
@pytest.mark.parametrize("sticky", SUPPORTED)
def test_short_ambiguous_message_keeps_the_conversation_language(text: str, sticky: str) -> None:
    assert _decide(text, sticky=sticky) == sticky


def test_shared_words_do_not_move_a_malay_conversation_to_indonesian() -> None:
    assert _decide("boleh tanya soal gaji", sticky="ms") == "ms"
    assert _decide("boleh tanya soal gaji", sticky="id") == "id"


def test_clear_message_switches_language() -> None:
    assert _decide("can you tell me how to contact the embassy please", sticky="id") == "en"
    assert _decide("gmn caranya lapor kalau gaji gak dibayar", sticky="en") == "id"
    assert _decide("majikan tak bagi gaji dah tiga bulan", sticky="en") == "ms"


def test_new_conversation_uses_hint_then_default() -> None:
    assert _decide("12345", hint="en") == "en"
    assert _decide("12345") == "id"
    assert _decide("ya", hint="en") == "en"  # too weak to overrule the channel
    assert _decide("saya mau tanya soal gaji yang belum dibayar", hint="en") == "id"
    assert _decide("12345", hint="fr") == "id"  # unsupported hint


def test_no_known_word_falls_back_to_seeded_langdetect_restricted_to_supported() -> None:
    text = "wonderful weather yesterday afternoon everybody"
    assert not any(w in markers().words for w in text.split())
    assert {detect(text, SUPPORTED) for _ in range(3)} == {detect(text, SUPPORTED)}
    assert detect(text, SUPPORTED)[0] == "en"
    assert detect(text, ("id", "ms"))[0] in ("id", "ms", None)  # never an unsupported one


def _cli(stdin: str, env: dict[str, str] | None = None) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-m", "bot.language"],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        timeout=120,
        check=True,
    )
    return result.stdout.splitlines()


def test_cli_prints_one_code_per_input_line() -> None:
    lines = [
        "halo min, gaji sy blm dibayar",
        "my employer keeps my passport",
        "",
        "macam mana nak balik kampung",
        "12345",
    ]
    # A database that cannot be reached: the CLI must not need one.
    env = {"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    assert _cli("\n".join(lines) + "\n", env) == ["id", "en", "id", "ms", "id"]
    assert _cli("") == []


def test_cli_follows_the_configured_languages(tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    languages = "[{code: en, name: English}, {code: id, name: Bahasa Indonesia}]"
    config.write_text(f"language:\n  default: en\n  languages: {languages}\n", encoding="utf-8")
    out = _cli("\nmacam mana nak balik kampung\nhello there\n", {"PMI_CONFIG": str(config)})
    assert out == ["en", "id", "en"]  # Malay unsupported: its nearest, Indonesian


# --- Malay readers: Indonesian replies unless a Malay answer exists ----------------------


def _tracker(intent: str, language: str, country: str | None) -> Tracker:
    entities = [{"entity": "country", "value": country}] if country else []
    return Tracker(
        sender_id="lang-test",
        slots={"language": language},
        latest_message={"text": "", "intent": {"name": intent}, "entities": entities},
        events=[],
        paused=False,
        followup_action=None,
        active_loop={},
        latest_action_name="action_listen",
    )


@pytest.fixture
async def action_resources() -> AsyncIterator[None]:
    """The action server's resources, as its start-up opens them."""
    async with opened():
        yield


@pytest.mark.usefixtures("action_resources")
async def test_malay_reader_gets_the_malay_answer_where_one_exists_else_indonesian() -> None:
    language = decide_for_new_user("nombor telefon kedutaan kat malaysia", **_languages())
    assert language == "ms"
    kb = KnowledgeBase.load(load_settings().content.knowledge_dir)
    seen = set()
    for intent, entry in kb.entries.items():
        for country, variant in [(None, entry.general), *entry.countries.items()]:
            dispatcher = CollectingDispatcher()
            await ActionAnswerKnowledge().run(
                dispatcher, _tracker(intent, language, country or "ZZ"), {}
            )
            [message] = dispatcher.messages[:1]
            expected = "ms" if variant.answers.get("ms") else "id"
            assert message["text"] == variant.answers[expected], (intent, country)
            seen.add(expected)
    assert seen == {"ms", "id"}  # the knowledge base has both cases


def _languages() -> dict[str, Any]:
    settings = load_settings().language
    return {"default": settings.default, "supported": tuple(settings.supported)}


def _shown_to_malay_reader(variant: dict) -> bool:
    conditions = variant.get("condition") or []
    return all(c.get("name") == "language" and c.get("value") == "ms" for c in conditions)


def test_domain_responses_give_malay_readers_indonesian_not_english() -> None:
    """Rasa picks a response's variant by the language slot; "ms" gets the unconditioned one."""
    checked = 0
    for path in sorted((ROOT / "rasa_project" / "domain").glob("*.yml")):
        responses = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("responses", {})
        for name, variants in responses.items():
            usable = [v for v in variants if _shown_to_malay_reader(v)]
            assert usable, f"{name}: no variant for a Malay reader"
            for variant in usable:
                text = re.sub(r"\{\w+\}", " ", variant.get("text", ""))  # placeholders
                detection = detect_scores(text, SUPPORTED)
                if detection is not None and len(text.split()) >= 4:
                    # Bilingual texts ("Pilih bahasa / Choose a language") are not confident.
                    english = detection.best == "en" and detection.margin() >= SWITCH_MARGIN
                    assert not english, f"{name} answers a Malay reader in English"
                    checked += 1
    assert checked > 20


@pytest.mark.e2e
async def test_malay_messages_through_the_stack(chat) -> None:
    """Malay where the knowledge base or the domain has Malay, else Indonesian (not English)."""
    texts = ["ok tq, terima kasih ye", "macam mana nak daftar kerja luar negara secara sah"]
    assert [decide_for_new_user(t, **_languages()) for t in texts] == ["ms", "ms"]
    embassy = joined(await say(chat, "lang-ms-1", "nombor telefon kedutaan indonesia kat malaysia"))
    assert "Perwakilan Indonesia di negara ini" in embassy  # the Malay list of missions
    assert "KBRI Kuala Lumpur: +60 17-668 8032" in embassy
    greeting = joined(await say(chat, "lang-ms-2", "hai, saya nak tanya sikit"))
    assert greeting.startswith("Hai! Saya pembantu maya")  # the domain's Malay greeting
    thanks = joined(await say(chat, "lang-ms-2", "ok tq, terima kasih ye"))
    assert thanks.startswith("Sama-sama")  # no Malay text: Indonesian
    legal = joined(
        await say(chat, "lang-ms-3", "macam mana nak daftar kerja luar negara secara sah")
    )
    assert "Sumber:" in legal and "Source:" not in legal  # no Malay answer: Indonesian
