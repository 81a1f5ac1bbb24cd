"""Reader of the sourced knowledge base (`data/knowledge/*.yml`) and of app reply texts.

Answers are written by staff in YAML, per intent, language and (optionally) country. A text
missing in the worker's language is taken from that language's fallbacks (config.yml).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import yaml

from pmi.settings import Fallbacks, configured_languages


class ContentError(ValueError):
    """Raised when a content file does not have the documented shape."""


@dataclass(frozen=True)
class Source:
    name: str
    url: str


@dataclass(frozen=True)
class Variant:
    answers: dict[str, str]
    sources: tuple[Source, ...]


@dataclass(frozen=True)
class Entry:
    intent: str
    reviewed: date
    general: Variant
    countries: dict[str, Variant] = field(default_factory=dict)


@dataclass(frozen=True)
class Answer:
    text: str
    language: str
    sources: tuple[Source, ...]
    country: str | None


def _pick_language(
    answers: dict[str, str], language: str, fallbacks: Fallbacks | None
) -> tuple[str, str]:
    for lang in (fallbacks or configured_languages().fallbacks).of(language):
        if answers.get(lang):
            return lang, answers[lang]
    raise ContentError("no answer text in any language")


def _variant(raw: dict, where: str, inherited: tuple[Source, ...] = ()) -> Variant:
    answers = raw.get("answers")
    if not isinstance(answers, dict) or not answers:
        raise ContentError(f"{where}: 'answers' must map languages to texts")
    sources = (
        tuple(Source(name=str(s["name"]), url=str(s["url"])) for s in raw.get("sources") or ())
        or inherited
    )
    if not sources:
        raise ContentError(f"{where}: 'sources' is required")
    return Variant(answers={str(k): str(v).strip() for k, v in answers.items()}, sources=sources)


class KnowledgeBase:
    """All entries, keyed by intent."""

    def __init__(self, entries: dict[str, Entry], fallbacks: Fallbacks | None = None) -> None:
        self.entries = entries
        self.fallbacks = fallbacks

    @classmethod
    def load(cls, directory: Path, fallbacks: Fallbacks | None = None) -> KnowledgeBase:
        entries: dict[str, Entry] = {}
        for path in sorted(directory.glob("*.yml")):
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            for intent, body in (raw.get("entries") or {}).items():
                where = f"{path.name}:{intent}"
                if intent in entries:
                    raise ContentError(f"{where}: duplicate entry")
                reviewed = body.get("reviewed")
                if not isinstance(reviewed, date):
                    raise ContentError(f"{where}: 'reviewed' must be a date (YYYY-MM-DD)")
                general = _variant(body, where)
                countries = {
                    str(code).upper(): _variant(v, f"{where}:{code}", general.sources)
                    for code, v in (body.get("countries") or {}).items()
                }
                entries[intent] = Entry(intent, reviewed, general, countries)
        return cls(entries, fallbacks)

    def answer(self, intent: str, language: str, country: str | None = None) -> Answer | None:
        """The answer for an intent in the best available language, country-specific if any."""
        entry = self.entries.get(intent)
        if entry is None:
            return None
        variant = entry.general
        used_country = None
        if country and country.upper() in entry.countries:
            used_country = country.upper()
            variant = entry.countries[used_country]
        lang, text = _pick_language(variant.answers, language, self.fallbacks)
        return Answer(text=text, language=lang, sources=variant.sources, country=used_country)


class Replies:
    """Fixed texts the app itself sends (holding reply, input errors), per language."""

    def __init__(
        self, texts: dict[str, dict[str, str]], fallbacks: Fallbacks | None = None
    ) -> None:
        self.texts = texts
        self.fallbacks = fallbacks

    @classmethod
    def load(cls, path: Path, fallbacks: Fallbacks | None = None) -> Replies:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        texts = raw.get("replies")
        if not isinstance(texts, dict):
            raise ContentError(f"{path}: expected a 'replies' mapping")
        texts = {k: {lang: str(t).strip() for lang, t in v.items()} for k, v in texts.items()}
        return cls(texts, fallbacks)

    def get(self, key: str, language: str) -> str:
        return _pick_language(self.texts[key], language, self.fallbacks)[1]
