"""The word lists staff edit in data/ are words: YAML reads a bare yes, no, y, on or off as
true or false, which silently broke "yes" as an answer once."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

DATA = Path(__file__).resolve().parent.parent / "data"
LISTS = {
    "case_labels.yml": ["yes_words", "no_words", "skip_words", "chat_words", "phone_words"],
    "commands.yml": ["safe_again"],
    "danger_lexicon.yml": ["instruction_words", "help_words", "filler_words", "menu_words"],
}


@pytest.mark.parametrize(("file", "keys"), LISTS.items())
def test_every_word_is_text(file: str, keys: list[str]) -> None:
    raw = yaml.safe_load((DATA / file).read_text("utf-8"))
    for key in keys:
        assert all(isinstance(w, str) for w in raw[key]), (file, key)
    if file == "commands.yml":
        for intent, words in raw["typed"].items():
            assert all(isinstance(w, str) for w in words), intent
