"""Reading a worker's complaint messages: what a message already says, what an answer means.

The complaint form (actions/complaints.py) asks one thing at a time, but workers write what
they have to say in one go ("gaji 3 bulan gk dibayar majikan di kuching malaysia"). This
module finds in any message the fields it contains, tells an answer from a question asked
in passing, and maps typed answers to the options of a choice (`data/form_words.yml`).
It is pure: the vocabularies come in, nothing is stored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from pmi.countries import CountryNames
from pmi.labels import CaseLabels, normalise
from pmi.places import Place, Places

_PHONE = re.compile(r"(?<![\w+])(\+?\d[\d\s().-]{7,22}\d)(?!\w)")
_AGENCY = re.compile(r"\b(?:p\.?t\.?)\s+([a-z0-9&.'-]+(?:\s+[a-z0-9&.'-]+){0,4})", re.I)
_AGENCY_STOP = frozenset(  # words that end an agency's name in a sentence
    {
        "di", "yang", "yg", "gak", "ga", "gk", "tidak", "tdk", "tak", "dan", "tapi", "sudah",
        "udah", "sdh", "belum", "blm", "ke", "dari", "in", "at", "from", "to", "and", "but",
        "not", "who", "which", "majikan", "saya", "sy", "aku", "gaji", "paspor", "itu", "ini",
        "resmi", "legal", "terdaftar", "berizin", "ya", "apa", "apakah", "is", "legit", "asli",
    }
)  # fmt: skip
_EMPLOYER = re.compile(  # "majikan saya namanya Mrs Lin", "my employer is Mdm Tay"
    r"(?i:\b(?:majikan|majikanku|bos|boss|employer|madam)(?:\s+(?:saya|sy|ku|aku|my))?"
    r"\s+(?:bernama|namanya|nama\s*nya|is|named|called)\s+"
    r"((?:mr|mrs|ms|mdm|madam|puan|encik|tuan|sir|miss|pak|bu|ibu)\.?\s+)?)"
    r"([A-Z][\w'-]+(?:\s+[A-Z][\w'-]+){0,2})"
)
_LETTERS = re.compile(r"^[^\W\d_]+(?:[\s'.,-]+[^\W\d_]+)*$")
STORY_WORDS = 4  # content words (beyond "saya mau lapor") that make a message a story
MAX_PLACE_WORDS = 4


@dataclass(frozen=True)
class FormWords:
    """The vocabularies of `data/form_words.yml`, normalised."""

    short_answer: int
    fillers: frozenset[str]
    choices: dict[str, dict[str, tuple[tuple[str, ...], ...]]]
    fields: dict[str, dict]
    field_words: dict[str, str]  # a word naming a field -> the field's slot
    change_words: frozenset[str]
    question_words: tuple[tuple[str, ...], ...]
    preamble: frozenset[str]
    unknown: tuple[tuple[str, ...], ...] = ()

    @classmethod
    def load(cls, path: Path) -> FormWords:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        fillers = frozenset(normalise(str(w)) for w in raw.get("fillers") or [])

        def phrase(text: object) -> tuple[str, ...]:
            words = tuple(normalise(str(text)).split())
            kept = tuple(w for w in words if w not in fillers)
            return kept or words

        choices = {
            kind: {
                str(option): tuple(phrase(p) for p in phrases) for option, phrases in body.items()
            }
            for kind, body in (raw.get("choices") or {}).items()
        }
        fields = raw.get("fields") or {}
        field_words = {
            normalise(str(word)): slot
            for slot, body in fields.items()
            for word in [*(body.get("words") or [])]
        }
        return cls(
            short_answer=int(raw.get("short_answer", 5)),
            fillers=fillers,
            choices=choices,
            fields=fields,
            field_words=field_words,
            change_words=frozenset(normalise(str(w)) for w in raw.get("change_words") or []),
            question_words=tuple(tuple(normalise(str(w)).split()) for w in raw["question_words"]),
            preamble=frozenset(normalise(str(w)) for w in raw.get("preamble") or []),
            unknown=tuple(tuple(normalise(str(w)).split()) for w in raw.get("unknown_phrases", [])),
        )

    def words_of(self, text: str) -> tuple[str, ...]:
        words = tuple(normalise(text).split())
        kept = tuple(w for w in words if w not in self.fillers)
        return kept or words

    def choice(self, kind: str, text: str) -> str | None:
        """The option of choice `kind` that the answer names, or None (e.g. two named)."""
        options = self.choices[kind]
        words = self.words_of(text)
        if not words:
            return None
        for option, phrases in options.items():
            if words in phrases:
                return option
        if len(words) > self.short_answer:
            return None
        named = {
            option
            for option, phrases in options.items()
            for p in phrases
            if not p[0].isdigit() and _contains(words, p)
        }
        return named.pop() if len(named) == 1 else None

    def is_question(self, text: str) -> bool:
        if text.strip().endswith("?"):
            return True
        words = tuple(normalise(text).split())
        return any(_contains(words, q) for q in self.question_words)

    def says_unknown(self, text: str) -> bool:
        """ "blm tau, blm dikasih tau mau ditempatin dmn": she does not know."""
        words = tuple(normalise(text).split())
        return any(_contains(words, phrase) for phrase in self.unknown)

    def field_to_change(self, text: str) -> str | None:
        """The field a correction names ("ubah kota" -> "city"), or None."""
        words = self.words_of(text)
        if len(words) > self.short_answer or not any(w in self.change_words for w in words):
            return None
        named = {self.field_words[w] for w in words if w in self.field_words}
        return named.pop() if len(named) == 1 else None

    def field_label(self, slot: str, language: str) -> str:
        body = self.fields.get(slot) or {}
        return str(body.get(language) or body.get("id") or slot)

    def content_words(self, text: str) -> list[str]:
        """The words of a message beyond "saya mau lapor" and chat particles."""
        return [w for w in normalise(text).split() if w not in self.preamble | self.fillers]


def _contains(words: tuple[str, ...], phrase: tuple[str, ...]) -> bool:
    size = len(phrase)
    return any(words[i : i + size] == phrase for i in range(len(words) - size + 1))


def find_phone(text: str) -> str | None:
    """A phone number written in the message, normalised to digits with an optional +."""
    for match in _PHONE.finditer(text or ""):
        raw = match.group(1)
        digits = re.sub(r"\D", "", raw)
        if 9 <= len(digits) <= 15 and (raw.startswith(("+", "0")) or len(digits) >= 10):
            return ("+" if raw.startswith("+") else "") + digits
    return None


def find_agency(text: str) -> str | None:
    """ "PT Maju Jaya" in "agensi saya PT maju jaya di jakarta" (up to five words)."""
    match = _AGENCY.search(text or "")
    if not match:
        return None
    words = []
    for word in match.group(1).split():
        if word.lower().strip(".,") in _AGENCY_STOP:
            break
        words.append(word.strip(".,"))
    return f"PT {' '.join(words)}" if words else None


def find_employer(text: str) -> str | None:
    """The employer's name when the message says it plainly ("majikan sy namanya Mrs Lin")."""
    match = _EMPLOYER.search(text or "")
    if not match:
        return None
    title = (match.group(1) or "").strip()
    return f"{title} {match.group(2)}".strip()


def looks_like_place(text: str) -> bool:
    """Could this answer be the name of a place not in the gazetteer ("Sibu", "Ipoh")?"""
    stripped = (text or "").strip()
    return bool(_LETTERS.match(stripped)) and len(stripped.split()) <= MAX_PLACE_WORDS


@dataclass(frozen=True)
class Reading:
    """What one message says about a complaint (None: not said)."""

    problem: str | None = None
    country: str | None = None
    place: Place | None = None
    agency: str | None = None
    employer: str | None = None
    phone: str | None = None
    story: str | None = None


class Intake:
    """Everything needed to read complaint messages, loaded once per process."""

    def __init__(
        self, words: FormWords, labels: CaseLabels, places: Places, countries: CountryNames
    ) -> None:
        self.words, self.labels, self.places, self.countries = words, labels, places, countries

    def country_of(self, text: str) -> str | None:
        return self.countries.resolve(text)

    def place_of(self, text: str, country: str | None, *, fuzzy: bool = False) -> Place | None:
        return self.places.find(text, country, fuzzy=fuzzy)

    def category_of(self, text: str) -> str | None:
        """A named problem category ("other" is never read out of a sentence)."""
        category = self.labels.category(text)
        return None if category in (None, "other", "emergency") else category

    def is_story(self, text: str) -> bool:
        """Does the message tell what happened (not just "mau lapor gaji")?"""
        content = self.words.content_words(text)
        return len(content) >= STORY_WORDS and (
            self.category_of(text) is not None or len(content) >= 2 * STORY_WORDS
        )

    def has_substance(self, text: str) -> bool:
        """A story answer: any real word ("dipukul"), not "ok", "ya" or "?"."""
        content = [w for w in self.words.content_words(text) if len(w) >= 3]
        yes_no = any(self.labels.is_word(k, text) for k in ("yes_words", "no_words", "skip_words"))
        return bool(content) and not yes_no

    def read(self, text: str, known_country: str | None = None) -> Reading:
        """Every field a message (usually the first one) contains; `known_country` only
        tells which of two same-named places is meant."""
        if not text or text.startswith("/"):
            return Reading()
        named = self.country_of(text)
        place = self.place_of(text, named or known_country)
        return Reading(
            problem=self.category_of(text),
            country=named or (place.country if place else None),
            place=place,
            agency=find_agency(text),
            employer=find_employer(text),
            phone=find_phone(text),
            story=text.strip() if self.is_story(text) else None,
        )
