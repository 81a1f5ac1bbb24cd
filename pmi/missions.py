"""Directory of Indonesian missions (`data/missions.yml`) and routing of cases to them.

A case goes to the mission covering the worker's place: a consulate that lists the place
itself (`cities`), then one that lists its region (`regions`, codes of `data/places.yml`),
else the country's main mission; unknown countries go to the default route.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from pmi.knowledge import ContentError
from pmi.places import Place, Places


@dataclass(frozen=True)
class Mission:
    code: str
    name: str
    kind: str
    countries: tuple[str, ...]
    cities: tuple[str, ...]
    hotline: str | None
    regions: tuple[str, ...] = ()
    hotline_label: str | None = None  # what the number is when not a voice hotline
    source: str | None = None  # the first source of the entry (cited with its number)


def _norm(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


class Missions:
    """Routes a country (and optionally a city) to the responsible mission."""

    def __init__(
        self, missions: list[Mission], default_code: str, places: Places | None = None
    ) -> None:
        self.by_code = {m.code: m for m in missions}
        if default_code not in self.by_code:
            raise ContentError(f"default_route {default_code!r} is not a mission code")
        self.default = self.by_code[default_code]
        self.places = places

    @classmethod
    def load(cls, path: Path, places_file: Path | None = None) -> Missions:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        missions = [
            Mission(
                code=str(m["code"]),
                name=str(m["name"]),
                kind=str(m.get("kind", "")),
                countries=tuple(str(c).upper() for c in m.get("countries") or ()),
                cities=tuple(_norm(str(c)) for c in m.get("cities") or ()),
                hotline=m.get("hotline"),
                regions=tuple(str(r) for r in m.get("regions") or ()),
                hotline_label=m.get("hotline_label"),
                source=next(iter(m.get("sources") or []), None),
            )
            for m in raw.get("missions") or []
        ]
        places = Places.load(places_file) if places_file and places_file.exists() else None
        return cls(missions, str(raw.get("default_route")), places)

    @property
    def countries(self) -> set[str]:
        return {c for m in self.by_code.values() for c in m.countries}

    def locate(self, text: str | None, country: str | None = None) -> Place | None:
        """The known place named in `text` (in `country` if given)."""
        if not text or self.places is None:
            return None
        return self.places.find(text, country)

    def main_mission(self, country: str | None) -> Mission:
        """The country's embassy (its mission without a consular area), else the default."""
        candidates = [
            m for m in self.by_code.values() if country and country.upper() in m.countries
        ]
        main = [m for m in candidates if not m.cities and not m.regions]
        return main[0] if main else (candidates[0] if candidates else self.default)

    def route(self, country: str | None, city: str | None = None) -> Mission:
        """The mission for a country and a place in free text (a city, an area, an address).

        A known place (`data/places.yml`) goes to the consulate listing it, or its region;
        the country may be told by the place alone. Otherwise the longest city name of a
        consulate found in the text wins, and on a tie the one written first ("tawau,
        sabah" goes to KRI Tawau although KJRI Kota Kinabalu covers the rest of Sabah).
        Unknown countries go to the default route (the national crisis centre).
        """
        place = self.locate(city, country)
        if place is not None:
            country = country or place.country
        if not country:
            return self.default
        country = country.upper()
        candidates = [m for m in self.by_code.values() if country in m.countries]
        if not candidates:
            return self.default
        if place is not None:
            name = _norm(place.name)
            for mission in candidates:
                if name in mission.cities:
                    return mission
            for mission in candidates:
                if place.region in mission.regions:
                    return mission
        if city:
            padded = f" {_norm(city)} "
            best: tuple[int, int, Mission] | None = None
            for mission in candidates:
                for name in mission.cities:
                    at = padded.find(f" {name} ")
                    if at >= 0 and (best is None or (len(name), -at) > best[:2]):
                        best = (len(name), -at, mission)
            if best:
                return best[2]
        return self.main_mission(country)
