"""The danger lexicon that forces the emergency path (data/danger_lexicon.yml)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from rasa_project.components.lexicon import compile_lexicon, find_danger

LEXICON = yaml.safe_load(
    (Path(__file__).resolve().parent.parent / "data" / "danger_lexicon.yml").read_text("utf-8")
)
PATTERNS, EXCLUDE = compile_lexicon(LEXICON)


def test_every_pattern_is_a_valid_regex_with_a_language_and_meaning() -> None:
    for item in LEXICON["patterns"]:
        re.compile(item["pattern"])
        assert item.get("lang") in {"id", "en", "ms"} and item.get("meaning"), item


@pytest.mark.parametrize(
    "text",
    [
        "tolong sy dipukul majikan",
        "majikan mukulin aku terus",
        "sy dikunci di kamar gk boleh keluar",
        "i was raped by my employer",
        "they locked me in the house",
        "saya nak lari, majikan dera saya",
        "aku pengen bunuh diri aja",
        "MAU KABURRR dari majikan",
        "tak dibenarkan keluar rumah",
        "tangan sy disetrika majikan",
        "kami dijaga satpam 24 jam, hp diambil",
        "di mess ada penjaga yg ngawasin siang malam",
        "we are guarded day and night and cannot leave",
    ],
)
def test_danger_is_found(text: str) -> None:
    assert find_danger(text, PATTERNS, EXCLUDE), text


@pytest.mark.parametrize(
    "text",
    [
        "kantor kbri buka pukul 10 ya",
        "gak boleh keluar negeri kalau umur 17?",
        "hp sy mau mati baterainya",
        "saya nak lari pagi hari minggu",
        "I am locked in a 2 year contract, can I go home early",
        "paspor sy ditahan agen",
        "berapa biaya ke taiwan",
        "sy kerja jaga toko 24 jam, lembur dibayar gak?",
        "kbri buka 24 jam gak?",
        "the guard at the embassy was friendly",
    ],
)
def test_everyday_words_do_not_raise_an_emergency(text: str) -> None:
    assert find_danger(text, PATTERNS, EXCLUDE) is None, text
