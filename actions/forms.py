"""Answer checks shared by the complaint and emergency forms."""

from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Tracker

from actions.db import country_names, intake, labels, missions
from pmi.missions import Mission

_PHONE_CHARS = re.compile(r"^\+?[\d\s().-]{8,24}$")
_LETTERS = re.compile(r"^[^\W\d_]+(?:[\s'.-]+[^\W\d_]+)*$")
MAX_SHORT = 120


def entity(tracker: Tracker, name: str) -> str | None:
    for item in (tracker.latest_message or {}).get("entities") or []:
        if item.get("entity") == name and isinstance(item.get("value"), str):
            return item["value"]
    return None


def message_id(tracker: Tracker) -> str | None:
    """The app's id of the worker message this turn answers (to file a case only once)."""
    metadata = (tracker.latest_message or {}).get("metadata") or {}
    value = metadata.get("message_id")
    return str(value)[:64] if value is not None else None


def text_of(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def parse_country(value: Any, tracker: Tracker) -> str | None:
    """A country code for a known country, the written name for another one, else None."""
    found = entity(tracker, "country")
    if found and len(found) == 2:
        return found.upper()
    text = text_of(value)
    code = country_names().resolve(text)
    if code:
        return code
    words = labels()
    if (
        _LETTERS.match(text)
        and 2 <= len(text) <= 40
        and len(text.split()) <= 4
        and not any(words.is_word(k, text) for k in ("skip_words", "yes_words", "no_words"))
    ):
        return text  # a country not in the directory: routed to the national crisis centre
    return None


def parse_phone(value: Any) -> str | None:
    """A phone number normalised to digits with an optional leading +."""
    text = text_of(value)
    if not _PHONE_CHARS.match(text):
        return None
    digits = re.sub(r"\D", "", text)
    if not 8 <= len(digits) <= 15:
        return None
    return ("+" if text.startswith("+") else "") + digits


def _is_word(kind: str, text: str) -> bool:
    """One of the listed words, also with chat particles around it ("iya boleh kak")."""
    plain = " ".join(intake().words.words_of(text))
    return labels().is_word(kind, text) or (bool(plain) and labels().is_word(kind, plain))


def is_skip(value: Any) -> bool:
    return _is_word("skip_words", text_of(value))


def yes_no(value: Any) -> str | None:
    text = text_of(value)
    if text in ("yes", "no"):
        return text
    if _is_word("yes_words", text):
        return "yes"
    if _is_word("no_words", text):
        return "no"
    return None


def route(country: str | None, city: str | None = None) -> Mission:
    code = country if country and len(country) == 2 and country.isupper() else None
    return missions().route(code, city)


def hotline_of(mission: Mission) -> tuple[str, str]:
    """(name, number) to show; a mission without a known number shows the national line."""
    if mission.hotline:
        return mission.name, mission.hotline
    default = missions().default
    return default.name, default.hotline or ""
