"""Matching of the danger lexicon, free of Rasa imports (used by the component and tests)."""

from __future__ import annotations

import re
from typing import Any


def compile_lexicon(raw: dict[str, Any]) -> tuple[re.Pattern[str] | None, re.Pattern[str] | None]:
    """Compile the lexicon's patterns and exclusions into two regular expressions."""

    def join(items: list[dict[str, Any]]) -> re.Pattern[str] | None:
        parts = [rf"\b(?:{item['pattern']})\b" for item in items if item.get("pattern")]
        return re.compile("|".join(parts), re.IGNORECASE) if parts else None

    return join(raw.get("patterns") or []), join(raw.get("exclude") or [])


def find_danger(
    text: str, patterns: re.Pattern[str] | None, exclude: re.Pattern[str] | None
) -> str | None:
    """Return the first danger phrase in `text`, ignoring excluded phrases."""
    if patterns is None:
        return None
    text = text.lower()
    if exclude is not None:
        text = exclude.sub(" ", text)
    match = patterns.search(text)
    return match.group(0) if match else None
