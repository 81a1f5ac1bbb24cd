"""The contacts a worker in danger is given: her mission, local police and ambulance, crisis lines.

Numbers come from `data/missions.yml` and `data/emergency_lines.yml` (each sourced and
marked for verification there); the wording of each line comes from `data/replies.yml`.
A consulate without a known number shows the embassy of that country instead, and the
national Kemlu hotline is always there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pmi.knowledge import Replies
from pmi.missions import Mission, Missions

MAX_SOURCES = 3  # sources cited under a country's list of missions


@dataclass(frozen=True)
class Line:
    name: str
    number: str
    hours: str | None = None
    international: str | None = None  # the number to dial from abroad, if the data gives it
    from_abroad: bool | None = None  # False: a short code that works only inside the country
    labels: tuple[tuple[str, str], ...] = ()  # (language, short name) for workers

    def label(self, language: str) -> str:
        names = dict(self.labels)
        return names.get(language) or names.get("id") or self.name


@dataclass(frozen=True)
class CountryLines:
    police: str | None = None
    ambulance: str | None = None
    crisis: tuple[Line, ...] = ()
    labour: Line | None = None


def _number(raw: Any) -> str | None:
    if isinstance(raw, dict) and raw.get("number"):
        return str(raw["number"])
    return None


def _line(raw: Any) -> Line | None:
    number = _number(raw)
    if number is None or not raw.get("name"):
        return None
    international = raw.get("international_number")
    labels = raw.get("label") or {}
    return Line(
        str(raw["name"]),
        number,
        raw.get("hours"),
        str(international) if international else None,
        raw.get("reachable_from_abroad"),
        tuple((str(k), str(v)) for k, v in labels.items()),
    )


class EmergencyLines:
    """`data/emergency_lines.yml`: per country code, police, ambulance, crisis and labour lines."""

    def __init__(self, countries: dict[str, CountryLines]) -> None:
        self._countries = countries

    @classmethod
    def load(cls, path: Path) -> EmergencyLines:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else {}
        countries = {}
        for code, body in ((raw or {}).get("countries") or {}).items():
            body = body or {}
            crisis = tuple(
                line for line in (_line(c) for c in body.get("crisis_lines") or []) if line
            )
            countries[str(code).upper()] = CountryLines(
                police=_number(body.get("police")),
                ambulance=_number(body.get("ambulance")),
                crisis=crisis,
                labour=_line(body.get("labour_hotline")),
            )
        return cls(countries)

    def of(self, country: str | None) -> CountryLines:
        return self._countries.get((country or "").upper(), CountryLines())


class ContactSheet:
    """Renders the contact lines of an emergency, a danger question or a self-harm reply."""

    def __init__(self, missions: Missions, lines: EmergencyLines, replies: Replies) -> None:
        self.missions = missions
        self._lines = lines
        self._replies = replies

    def _text(self, key: str, language: str, **values: str) -> str:
        return "- " + self._replies.get(key, language).format(**values)

    def _mission_lines(self, mission: Mission, country: str | None, language: str) -> list[str]:
        if mission.hotline and mission.hotline_label:
            line = self._text(
                "contact_mission_labelled",
                language,
                name=mission.name,
                label=mission.hotline_label,
                number=mission.hotline,
            )
            return [line]
        if mission.hotline:
            return [
                self._text("contact_mission", language, name=mission.name, number=mission.hotline)
            ]
        main = self.missions.main_mission(country) if country else self.missions.default
        if main.hotline and main.code != mission.code:
            return [
                self._text(
                    "contact_mission_via",
                    language,
                    name=mission.name,
                    via=main.name,
                    number=main.hotline,
                )
            ]
        return [self._text("contact_mission_no_number", language, name=mission.name)]

    def _local_lines(self, country: str | None, language: str) -> list[str]:
        local = self._lines.of(country)
        lines = []
        if local.police and local.police == local.ambulance:
            lines.append(self._text("contact_police_ambulance", language, number=local.police))
        else:
            if local.police:
                lines.append(self._text("contact_police", language, number=local.police))
            if local.ambulance:
                lines.append(self._text("contact_ambulance", language, number=local.ambulance))
        if not lines:
            lines.append(self._text("contact_police_local", language))
        if local.labour:
            lines.append(
                self._text(
                    "contact_line",
                    language,
                    name=local.labour.label(language),
                    number=local.labour.number,
                )
            )
        return lines

    def emergency(self, mission: Mission, country: str | None, language: str) -> str:
        """The contacts for someone in danger now where `mission` is responsible."""
        lines = self._mission_lines(mission, country, language)
        lines += self._local_lines(country, language)
        lines.append(self._text("contact_kemlu", language))
        return "\n".join(lines)

    def directory(self, country: str, language: str) -> str | None:
        """Every Indonesian mission in a country with its number, the local emergency lines,
        and where the numbers come from; None for a country without a mission here."""
        missions = [m for m in self.missions.by_code.values() if country.upper() in m.countries]
        if not missions:
            return None
        main = self.missions.main_mission(country)
        missions.sort(key=lambda m: (m.code != main.code, m.name))
        lines = [self._replies.get("embassy_header", language)]
        for mission in missions:
            if mission.hotline:
                lines += self._mission_lines(mission, country, language)
            else:
                lines.append(self._text("contact_mission_no_number", language, name=mission.name))
        lines += self._local_lines(country, language)
        lines.append(self._text("contact_kemlu", language))
        sources = list(dict.fromkeys(m.source for m in missions if m.hotline and m.source))
        footer = self._replies.get("embassy_footer", language)
        lines.append(footer.format(source="; ".join(sources[:MAX_SOURCES]) or "-"))
        return "\n".join(lines)

    def crisis(self, country: str | None, language: str) -> str:
        """Crisis lines of the worker's country and of Indonesia, then the Kemlu hotline."""
        lines = [
            self._text("contact_line", language, name=line.label(language), number=line.number)
            for line in self._lines.of(country).crisis
        ]
        if (country or "").upper() != "ID":
            # From abroad only lines with a full international number (not short codes).
            lines += [
                self._text(
                    "contact_crisis_indonesia",
                    language,
                    name=line.label(language),
                    number=line.international,
                )
                for line in self._lines.of("ID").crisis
                if line.international and line.from_abroad is not False
            ]
        lines += self._local_lines(country, language)[:1]
        lines.append(self._text("contact_kemlu", language))
        return "\n".join(lines)
