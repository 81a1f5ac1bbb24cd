"""Case labels and answer vocabularies (`data/case_labels.yml`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

_WORDS = re.compile(r"[a-z0-9']+")
_REDUPLICATED = re.compile(r"^([a-z]{3,})2$")


def normalise(text: str) -> str:
    return " ".join(_WORDS.findall((text or "").lower()))


@dataclass(frozen=True)
class CaseLabels:
    categories: dict[str, dict]
    statuses: dict[str, dict[str, str]]
    words: dict[str, frozenset[str]]
    other: dict[str, dict[str, dict[str, str]]]

    @classmethod
    def load(cls, path: Path) -> CaseLabels:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        words = {
            key: frozenset(normalise(str(w)) or str(w) for w in raw.get(key) or [])
            for key in ("skip_words", "chat_words", "phone_words", "yes_words", "no_words")
        }
        other = {k: raw.get(k) or {} for k in ("alert_reasons", "priorities")}
        return cls(raw["categories"], raw["statuses"], words, other)

    def label(self, kind: str, code: str, language: str) -> str:
        tables = {"category": self.categories, "status": self.statuses}
        table = tables.get(kind) or self.other[kind]
        entry = table.get(code) or {}
        return str(entry.get(language) or entry.get("id") or code)

    def is_word(self, kind: str, text: str) -> bool:
        """True if the whole answer is one of the listed words (e.g. "lewati", "ya")."""
        stripped = (text or "").strip().lower()
        return normalise(text) in self.words[kind] or stripped in self.words[kind]

    def category(self, text: str) -> str | None:
        """Map a menu number or free words to a category code (the longest keyword wins;
        "dijual2", Indonesian reduplication, reads as "dijual")."""
        answer = " ".join(_REDUPLICATED.sub(r"\1", w) for w in normalise(text).split())
        if answer.isdigit():
            for code, entry in self.categories.items():
                if entry.get("number") and str(entry["number"]) == answer:
                    return code
            return None
        padded = f" {answer} "
        best: tuple[int, str] | None = None
        for code, entry in self.categories.items():
            for keyword in entry.get("keywords") or []:
                key = normalise(str(keyword))
                if key and f" {key} " in padded and (best is None or len(key) > best[0]):
                    best = (len(key), code)
        return best[1] if best else None
