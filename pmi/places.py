"""Places workers name (`data/places.yml`): the city or area in free text, and its region.

Used to route a case to the consulate covering the worker's place ("sy di johor bahru"
-> the region Johor -> KJRI Johor Bahru), to tell the country from a place alone, and to
check a city answer in the complaint form. Matching is on whole words, the longest name
first; a short answer (a city typed alone) may also be a misspelling of a known name.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import yaml

from pmi.knowledge import ContentError

_TOKEN = re.compile(r"[a-z0-9]+")
MAX_WORDS = 5  # the longest place name, in words
FUZZY_MIN_LENGTH = 5  # a misspelling is recognised only for names at least this long
FUZZY_CUTOFF = 0.84


def words(text: str) -> list[str]:
    """Lowercase words of letters and digits, accents dropped ("München" -> "munchen")."""
    plain = unicodedata.normalize("NFKD", text.lower())
    return _TOKEN.findall("".join(c for c in plain if not unicodedata.combining(c)))


@dataclass(frozen=True)
class Place:
    country: str
    region: str  # the region's code (a state, province or prefecture)
    region_name: str
    name: str  # the place's proper name (the region's, when the region itself was named)

    @property
    def label(self) -> str:
        """ "Kuching, Sarawak" (or just "Sarawak" when the region was named)."""
        return self.name if self.name == self.region_name else f"{self.name}, {self.region_name}"


class Places:
    """An index of every name and alias, by its words."""

    def __init__(
        self,
        index: dict[tuple[str, ...], list[Place]],
        never: frozenset[tuple[str, ...]] = frozenset(),
    ) -> None:
        self._index = index
        self._never = never  # phrases never read as a place (Indonesian towns, everyday words)
        self._single = sorted(k[0] for k in index if len(k) == 1 and len(k[0]) >= FUZZY_MIN_LENGTH)

    @classmethod
    def load(cls, path: Path) -> Places:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        index: dict[tuple[str, ...], list[Place]] = {}

        def add(name: str, place: Place) -> None:
            key = tuple(words(name))
            if key and place not in index.setdefault(key, []):
                index[key].append(place)

        for country, body in (raw.get("countries") or {}).items():
            for region in (body or {}).get("regions") or []:
                if "code" not in region or "name" not in region:
                    raise ContentError(f"{path}: a region of {country} lacks code or name")
                code, region_name = str(region["code"]), str(region["name"])
                whole = Place(str(country).upper(), code, region_name, region_name)
                for name in [region_name, *(region.get("aliases") or [])]:
                    add(str(name), whole)
                for item in region.get("places") or []:
                    place = Place(str(country).upper(), code, region_name, str(item["name"]))
                    for name in [item["name"], *(item.get("aliases") or [])]:
                        add(str(name), place)
        never = frozenset(tuple(words(str(w))) for w in raw.get("not_places") or ())
        return cls(index, never)

    def _without_never(self, tokens: list[str]) -> list[str]:
        """The words of the text with every phrase of `not_places` blanked out."""
        out = list(tokens)
        for size in range(min(MAX_WORDS, len(out)), 0, -1):
            for start in range(len(out) - size + 1):
                if tuple(out[start : start + size]) in self._never:
                    out[start : start + size] = [""] * size
        return out

    def _candidates(self, tokens: list[str]) -> list[tuple[int, int, list[Place]]]:
        found = []
        for size in range(min(MAX_WORDS, len(tokens)), 0, -1):
            for start in range(len(tokens) - size + 1):
                places = self._index.get(tuple(tokens[start : start + size]))
                if places:
                    found.append((size, start, places))
        return found

    def find(self, text: str, country: str | None = None, *, fuzzy: bool = False) -> Place | None:
        """The place named in `text` (in `country` if given), or None.

        The longest name wins, then the first one written. A name shared by two countries
        counts only with the country known. `fuzzy`: a short answer may be a misspelling.
        """
        tokens = self._without_never(words(text))
        for _size, _start, places in self._candidates(tokens):
            chosen = self._pick(places, country)
            if chosen is not None:
                return chosen
        if fuzzy and 1 <= len([t for t in tokens if t]) <= 2:
            for token in tokens:
                if len(token) < FUZZY_MIN_LENGTH:
                    continue  # (blanked words of `not_places` are empty)
                for close in difflib.get_close_matches(token, self._single, 3, FUZZY_CUTOFF):
                    chosen = self._pick(self._index[(close,)], country)
                    if chosen is not None:
                        return chosen
        return None

    @staticmethod
    def _pick(places: list[Place], country: str | None) -> Place | None:
        if country:
            places = [p for p in places if p.country == country.upper()]
        countries = {p.country for p in places}
        return places[0] if len(countries) == 1 else None
