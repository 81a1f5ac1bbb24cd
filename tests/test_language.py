"""Reply-language decisions."""

from __future__ import annotations

import pytest

from bot.language import decide_language, detect

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
    ],
)
def test_detects_how_workers_write(text: str, expected: str) -> None:
    assert detect(text, SUPPORTED)[0] == expected


def _decide(text: str, **kw: str | None) -> str:
    args: dict = {"chosen": None, "sticky": None, "hint": None}
    args.update(kw)
    return decide_language(text, default="id", supported=SUPPORTED, **args)


def test_explicit_choice_wins_over_detection() -> None:
    assert _decide("hello how are you", chosen="id") == "id"


def test_short_ambiguous_message_keeps_the_conversation_language() -> None:
    assert _decide("ok", sticky="en") == "en"
    assert _decide("PMI-7KQ2XR", sticky="ms") == "ms"


def test_clear_message_switches_language() -> None:
    assert _decide("can you tell me how to contact the embassy please", sticky="id") == "en"


def test_new_conversation_uses_hint_then_default() -> None:
    assert _decide("12345", hint="en") == "en"
    assert _decide("12345") == "id"
