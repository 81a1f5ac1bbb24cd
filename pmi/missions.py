"""Directory of Indonesian missions (`data/missions.yml`) and routing of cases to them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from pmi.knowledge import ContentError


@dataclass(frozen=True)
class Mission:
    code: str
    name: str
    kind: str
    countries: tuple[str, ...]
    cities: tuple[str, ...]
    hotline: str | None


def _norm(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


class Missions:
    """Routes a country (and optionally a city) to the responsible mission."""

    def __init__(self, missions: list[Mission], default_code: str) -> None:
        self.by_code = {m.code: m for m in missions}
        if default_code not in self.by_code:
            raise ContentError(f"default_route {default_code!r} is not a mission code")
        self.default = self.by_code[default_code]

    @classmethod
    def load(cls, path: Path) -> Missions:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        missions = [
            Mission(
                code=str(m["code"]),
                name=str(m["name"]),
                kind=str(m.get("kind", "")),
                countries=tuple(str(c).upper() for c in m.get("countries") or ()),
                cities=tuple(_norm(str(c)) for c in m.get("cities") or ()),
                hotline=m.get("hotline"),
            )
            for m in raw.get("missions") or []
        ]
        return cls(missions, str(raw.get("default_route")))

    @property
    def countries(self) -> set[str]:
        return {c for m in self.by_code.values() for c in m.countries}

    def route(self, country: str | None, city: str | None = None) -> Mission:
        """The mission for a country; a consulate when the city is in its area.

        The longest matching name wins, and on a tie the one written first ("tawau, sabah"
        goes to KRI Tawau although KJRI Kota Kinabalu covers the rest of Sabah). Unknown
        countries go to the default route (the national crisis centre).
        """
        if not country:
            return self.default
        country = country.upper()
        candidates = [m for m in self.by_code.values() if country in m.countries]
        if not candidates:
            return self.default
        if city:
            place = f" {_norm(city)} "
            best: tuple[int, int, Mission] | None = None
            for mission in candidates:
                for name in mission.cities:
                    at = place.find(f" {name} ")
                    if at >= 0 and (best is None or (len(name), -at) > best[:2]):
                        best = (len(name), -at, mission)
            if best:
                return best[2]
        main = [m for m in candidates if not m.cities]
        return main[0] if main else candidates[0]
