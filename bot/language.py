"""Reply-language decisions: explicit choice > sticky history > detection > channel hint.

langdetect alone is unreliable on short, colloquial Indonesian and Malay (it often
answers "so", "tl" or "sw"), so a marker-word vote over the three supported
languages decides first, and langdetect is consulted only when no marker is found.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from langdetect import DetectorFactory, LangDetectException, detect_langs

_WORD = re.compile(r"[a-z]+")

# Marker words typical of each language as workers write it (incl. SMS abbreviations).
MARKERS: dict[str, frozenset[str]] = {
    "id": frozenset(
        [
            "saya",
            "sy",
            "aku",
            "aq",
            "gue",
            "gw",
            "kamu",
            "anda",
            "bisa",
            "gimana",
            "gmn",
            "gmna",
            "bagaimana",
            "berapa",
            "brp",
            "apa",
            "apakah",
            "tidak",
            "tdk",
            "gak",
            "ga",
            "gk",
            "nggak",
            "enggak",
            "ngga",
            "belum",
            "blm",
            "sudah",
            "udah",
            "udh",
            "sdh",
            "dong",
            "deh",
            "sih",
            "kok",
            "kak",
            "min",
            "mbak",
            "mba",
            "mas",
            "bu",
            "pak",
            "tolong",
            "tlg",
            "mau",
            "pengen",
            "ingin",
            "yang",
            "yg",
            "dengan",
            "dgn",
            "untuk",
            "utk",
            "karena",
            "krn",
            "bgt",
            "banget",
            "kerja",
            "gaji",
            "majikan",
            "paspor",
            "bagaimanakah",
            "kenapa",
            "mengapa",
            "kapan",
            "dimana",
            "dmn",
            "terima",
            "kasih",
            "makasih",
            "trims",
            "halo",
            "selamat",
            "pagi",
            "siang",
            "sore",
            "malam",
            "ini",
            "itu",
            "juga",
            "jg",
            "agen",
            "pt",
            "calo",
            "biaya",
            "daftar",
            "syarat",
            "dokumen",
            "pulang",
            "kampung",
            "terus",
            "trus",
            "nih",
            "tuh",
            "aja",
            "saja",
        ]
    ),
    "ms": frozenset(
        [
            "tak",
            "nak",
            "macam",
            "mana",
            "boleh",
            "ke",
            "kat",
            "awak",
            "kau",
            "sikit",
            "bila",
            "sebab",
            "tu",
            "ni",
            "lah",
            "pun",
            "ada",
            "apa",
            "takde",
            "tiada",
            "kerana",
            "hendak",
            "mahu",
            "balik",
            "kampung",
            "duit",
            "wang",
            "gaji",
            "cuti",
            "kilang",
            "ladang",
            "majikan",
            "saya",
            "pasport",
            "terima",
            "kasih",
            "tolong",
            "nombor",
            "telefon",
            "berapa",
            "kenapa",
        ]
    ),
    "en": frozenset(
        [
            "i",
            "my",
            "me",
            "you",
            "your",
            "is",
            "are",
            "am",
            "was",
            "the",
            "a",
            "an",
            "to",
            "for",
            "of",
            "and",
            "what",
            "how",
            "where",
            "when",
            "why",
            "can",
            "could",
            "would",
            "should",
            "do",
            "does",
            "did",
            "not",
            "no",
            "yes",
            "please",
            "thanks",
            "thank",
            "hello",
            "hi",
            "help",
            "want",
            "need",
            "work",
            "job",
            "salary",
            "employer",
            "passport",
            "agency",
            "embassy",
            "money",
            "home",
            "have",
            "has",
            "with",
            "about",
        ]
    ),
}
# Words that are Malaysian rather than Indonesian even though both share most vocabulary.
STRONG_MS = frozenset(
    ["tak", "nak", "macam", "kat", "awak", "takde", "sikit", "hendak", "nombor", "duit"]
)

DetectorFactory.seed = 0  # langdetect is random by default; make it repeatable


def _vote(words: list[str]) -> dict[str, float]:
    scores = {lang: 0.0 for lang in MARKERS}
    for w in words:
        for lang, markers in MARKERS.items():
            if w in markers:
                scores[lang] += 1.0
        if w in STRONG_MS:
            scores["ms"] += 1.5
    return scores


def detect(text: str, supported: Iterable[str] = ("id", "en", "ms")) -> tuple[str | None, float]:
    """Return (language, confidence in 0..1) or (None, 0) when the text says too little."""
    supported = tuple(supported)
    words = _WORD.findall(text.lower())
    if not words:
        return None, 0.0
    scores = {k: v for k, v in _vote(words).items() if k in supported}
    total = sum(scores.values())
    if total > 0:
        best = max(scores, key=lambda k: scores[k])
        return best, min(1.0, scores[best] / total * min(1.0, total / 3))
    try:
        guesses = detect_langs(text)
    except LangDetectException:
        return None, 0.0
    for guess in guesses:
        if guess.lang in supported:
            return guess.lang, guess.prob * 0.5
    return None, 0.0


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
    switches the language, and a weak one keeps the language of the conversation so
    far; a new conversation falls back to the channel's hint, then the default.
    """
    supported = tuple(supported)
    if chosen in supported:
        return chosen  # type: ignore[return-value]
    lang, confidence = detect(text, supported)
    if lang and (confidence >= 0.6 or (sticky is None and confidence > 0)):
        return lang
    if sticky in supported:
        return sticky  # type: ignore[return-value]
    if hint in supported:
        return hint  # type: ignore[return-value]
    return default
