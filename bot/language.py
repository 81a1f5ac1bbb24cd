"""Reply-language decisions: explicit choice > sticky history > detection > channel hint.

langdetect alone is unreliable on short, colloquial Indonesian and Malay (it often
answers "so", "tl" or "sw", and it cannot tell Indonesian from Malay in a few words),
so a weighted word vote decides first. Indonesian and Malay share most of their
vocabulary: shared words only say "Indonesian or Malay", and Malay is chosen only on
words that are Malaysian usage (tak, nak, kat, dah, ...), since the deployment's workers
are Indonesian and Malay readers are answered in Indonesian anyway where no Malay text
exists. langdetect is consulted, restricted to the supported languages, only when no
known word is found.

`python -m bot.language` prints the decision for a new user, one line per input line.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from langdetect import DetectorFactory, LangDetectException, detect_langs

from pmi.knowledge import ContentError
from pmi.settings import ROOT, SettingsError, load_settings

logger = logging.getLogger(__name__)

_WORD = re.compile(r"[a-z]+")

# A detection must beat the conversation's language by this much probability to switch
# away from it; a single word never does, so "ok", "ya", "1" keep the language.
SWITCH_MARGIN = 0.35
# Pseudo-count added to every language: little evidence stays close to "don't know".
PRIOR = 1.0
LANGDETECT_MAX_CHARS = 300
# Weight of langdetect's restricted probabilities when no known word was found, reached
# from this many words on (langdetect is unreliable on a word or two).
LANGDETECT_WEIGHT = 2.0
LANGDETECT_FULL_WORDS = 4
# The pair's preferred language (Indonesian) wins on equal evidence by this much.
PREFER_BIAS = 0.01


MARKERS_FILE = ROOT / "data" / "language_markers.yml"
SHARED = "shared"  # the table of words that say "one of the pair", not which


@dataclass(frozen=True)
class Markers:
    """The marker words of data/language_markers.yml: word -> (language or SHARED, weight)."""

    words: dict[str, tuple[str, float]]
    languages: tuple[str, ...]  # the languages the words tell apart, as in the file
    pair: tuple[str, ...]  # the languages the SHARED words are evidence for
    prefer: str  # of the pair, the one chosen on equal evidence

    def table(self, name: str) -> dict[str, float]:
        """The words of one language (or SHARED) and their weights."""
        return {w: weight for w, (table, weight) in self.words.items() if table == name}


def _marker_groups(groups: Any, where: str) -> list[tuple[float, list[str]]]:
    if not isinstance(groups, list) or not groups:
        raise ContentError(f"{where}: expected a list of {{weight, words}}")
    parsed = []
    for group in groups:
        weight = group.get("weight") if isinstance(group, dict) else None
        words = group.get("words") if isinstance(group, dict) else None
        if not isinstance(weight, int | float) or weight <= 0 or not isinstance(words, str):
            raise ContentError(f"{where}: each group needs a positive weight and words")
        bad = [w for w in words.split() if not _WORD.fullmatch(w)]
        if bad:
            raise ContentError(f"{where}: words must be lower-case letters a-z: {bad}")
        parsed.append((float(weight), words.split()))
    return parsed


def load_markers(path: Path) -> Markers:
    """Read and check the marker words; ContentError says what is wrong with the file."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(raw, dict) or raw.get("version") != 1:
        raise ContentError(f"{path}: expected a mapping with version: 1")
    languages, pair = raw.get("languages"), tuple(raw.get("pair") or ())
    if not isinstance(languages, dict) or not languages:
        raise ContentError(f"{path}: 'languages' must map language codes to word groups")
    if len(pair) != 2 or not set(pair) <= set(languages) or raw.get("prefer") not in pair:
        raise ContentError(f"{path}: 'pair' must be two of the languages, 'prefer' one of them")
    tables = {**languages, SHARED: raw.get(SHARED)}
    words: dict[str, tuple[str, float]] = {}
    for name, groups in tables.items():
        for weight, listed in _marker_groups(groups, f"{path}: {name}"):
            for word in listed:
                if word in words:
                    raise ContentError(
                        f"{path}: {word!r} is listed twice ({words[word][0]} and {name})"
                    )
                words[word] = (str(name), weight)
    return Markers(words, tuple(str(code) for code in languages), pair, str(raw["prefer"]))


@cache
def markers(path: Path = MARKERS_FILE) -> Markers:
    """The marker words, read once per process."""
    return load_markers(path)


# Malay yes/no question particle: "boleh ke?", "sah ke tak".
_MALAY_QUESTION = re.compile(r"\bke(?:r)?\s*(?:\?|$|\s+(?:tak|x)\b)")


@dataclass(frozen=True)
class Detection:
    """Probabilities over the supported languages (close to uniform on little evidence)."""

    probabilities: dict[str, float]

    @property
    def best(self) -> str:
        return max(self.probabilities, key=lambda k: self.probabilities[k])

    def margin(self, other: str | None = None) -> float:
        """How much more likely the best language is than `other` (or the runner-up)."""
        ranked = sorted(self.probabilities.values(), reverse=True)
        if other in self.probabilities:
            return ranked[0] - self.probabilities[other]  # type: ignore[index]
        return ranked[0] - (ranked[1] if len(ranked) > 1 else 0.0)


def _affix_family(word: str) -> bool:
    """Indonesian/Malay morphology on words no list knows (-nya, -kan, ng-/ny- verbs)."""
    return (
        (word.endswith("nya") and len(word) > 4)
        or (word.endswith("kan") and len(word) > 5)
        or (word.startswith(("ng", "ny")) and len(word) > 3)
    )


def _lexical_scores(text: str) -> tuple[dict[str, float], float]:
    """Distinct evidence per language, and evidence shared by the pair (Indonesian, Malay)."""
    known = markers()
    scores = dict.fromkeys(known.languages, 0.0)
    shared = 0.0
    if "ms" in scores:
        scores["ms"] += len(_MALAY_QUESTION.findall(text))
    for w in _WORD.findall(text):
        table, weight = known.words.get(w, ("", 0.0))
        if table == SHARED:
            shared += weight
        elif table:
            scores[table] += weight
        elif _affix_family(w):
            shared += 0.5
    return scores, shared


def _langdetect_scores(text: str, supported: tuple[str, ...]) -> tuple[dict[str, float], float]:
    """langdetect restricted to the supported languages; Indonesian/Malay count as shared."""
    DetectorFactory.seed = 0  # langdetect is random by default; make it repeatable
    try:
        # The first characters say the language as well as the whole text, and langdetect's
        # time grows with the length: a long message would block the event loop.
        guesses = detect_langs(text[:LANGDETECT_MAX_CHARS])
    except LangDetectException:
        return {}, 0.0
    probs = {g.lang: g.prob for g in guesses if g.lang in supported}
    total = sum(probs.values())
    if total <= 0:
        return {}, 0.0
    weight = LANGDETECT_WEIGHT * min(1.0, len(_WORD.findall(text)) / LANGDETECT_FULL_WORDS)
    pair = markers().pair
    shared = sum(probs.get(lang, 0.0) for lang in pair) / total
    distinct = {lang: weight * p / total for lang, p in probs.items() if lang not in pair}
    return distinct, weight * shared


def warm_up() -> None:
    """Load langdetect's profiles now (about 0.4 s the first time), not on a worker's message."""
    _langdetect_scores("warm up the language profiles", markers().languages)


def detect_scores(text: str, supported: Iterable[str] | None = None) -> Detection | None:
    """Probabilities over the supported languages (default: the markers' languages), or
    None when the text says nothing."""
    supported = tuple(markers().languages if supported is None else supported)
    text = text.lower()
    if not _WORD.search(text):
        return None
    scores, shared = _lexical_scores(text)
    if sum(scores.values()) + shared == 0:
        scores, shared = _langdetect_scores(text, supported)
        if sum(scores.values()) + shared == 0:
            return None
    pair = [lang for lang in markers().pair if lang in supported]
    raw = {lang: scores.get(lang, 0.0) for lang in supported}
    for lang in pair:
        raw[lang] += shared / len(pair)
    if markers().prefer in raw:
        raw[markers().prefer] += PREFER_BIAS
    total = sum(raw.values()) + PRIOR * len(raw)
    return Detection({lang: (raw[lang] + PRIOR) / total for lang in raw})


def detect(text: str, supported: Iterable[str] | None = None) -> tuple[str | None, float]:
    """Return (language, confidence in 0..1) or (None, 0) when the text says too little.

    The confidence is the best language's lead in probability over the runner-up.
    """
    detection = detect_scores(text, supported)
    if detection is None:
        return None, 0.0
    return detection.best, detection.margin()


def decide_language(
    text: str,
    *,
    chosen: str | None,
    sticky: str | None,
    hint: str | None,
    default: str,
    supported: Iterable[str],
) -> str:
    """Pick the reply language for one message.

    An explicit choice always wins. Otherwise a confident detection on this message
    switches the language; a weak one (short or ambiguous text) keeps the language of
    the conversation so far, and in a new conversation the channel's hint; a weak
    detection still beats the bare default.
    """
    supported = tuple(supported)
    if chosen in supported:
        return chosen  # type: ignore[return-value]
    detection = detect_scores(text, supported)
    known = sticky if sticky in supported else (hint if hint in supported else None)
    if detection is not None:
        if known is None or detection.best == known:
            return detection.best
        if detection.margin(known) >= SWITCH_MARGIN:
            return detection.best
    if known is not None:
        return known
    return default if default in supported else supported[0]


def decide_for_new_user(text: str, *, default: str, supported: Iterable[str]) -> str:
    """The decision for someone with no history, no choice and no channel hint."""
    return decide_language(
        text, chosen=None, sticky=None, hint=None, default=default, supported=supported
    )


def language_settings() -> tuple[str, tuple[str, ...]]:
    """Default and supported languages from config.yml (no secrets or database needed)."""
    try:
        language = load_settings().language
    except SettingsError as exc:
        known = markers()
        logger.warning("settings unreadable, using the marker words' languages: %s", exc)
        return known.prefer, known.languages
    return language.default, tuple(language.supported)


def main() -> int:
    """Read one message per line on stdin; print one ISO 639-1 code per line."""
    default, supported = language_settings()
    out = sys.stdout
    for line in sys.stdin:
        text = line.rstrip("\r\n")
        out.write(decide_for_new_user(text, default=default, supported=supported) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
