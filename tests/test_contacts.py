"""The contacts given to a worker in danger (pmi/contacts.py, data/emergency_lines.yml)."""

from __future__ import annotations

import re

import pytest
import yaml

from pmi.contacts import ContactSheet, EmergencyLines
from pmi.knowledge import Replies
from pmi.missions import Missions
from pmi.settings import load_settings

CONTENT = load_settings().content


@pytest.fixture(scope="module")
def sheet() -> ContactSheet:
    return ContactSheet(
        Missions.load(CONTENT.missions_file, CONTENT.places_file),
        EmergencyLines.load(CONTENT.emergency_lines_file),
        Replies.load(CONTENT.replies_file),
    )


def test_a_consulate_without_a_number_shows_the_embassy_of_that_country(sheet) -> None:
    kuching = sheet.missions.route("MY", "kuching")
    text = sheet.emergency(kuching, "MY", "id")
    assert "KJRI Kuching" in text and "KBRI Kuala Lumpur, +60 17-668 8032" in text
    assert "+62 21 2924 4800" not in text  # not the Jakarta line instead of the embassy


def test_taiwan_shows_the_missions_own_number_and_1955_as_the_labour_ministrys(sheet) -> None:
    text = sheet.emergency(sheet.missions.route("TW", None), "TW", "id")
    assert "KDEI Taipei: +886 901 132 000" in text
    assert "KDEI Taipei: 1955" not in text
    assert "Kementerian Tenaga Kerja Taiwan" in text and ": 1955" in text
    assert "Polisi setempat: 110" in text and "Ambulans: 119" in text


def test_a_mission_with_a_labelled_number_says_what_it_is(sheet) -> None:
    text = sheet.emergency(sheet.missions.route("MY", "johor bahru"), "MY", "id")
    assert "KJRI Johor Bahru (WhatsApp KSATRIA, 24 jam): +60 10-528 8040" in text
    assert "Polisi dan ambulans setempat: 999" in text


def test_an_unknown_country_gets_the_national_lines_and_the_local_police(sheet) -> None:
    text = sheet.emergency(sheet.missions.default, None, "en")
    assert "The local police" in text and "+62 812 9007 0027" in text


def test_crisis_lines_from_abroad_are_dialable_numbers_only(sheet) -> None:
    text = sheet.crisis("HK", "id")
    assert "18111" in text and "(di Indonesia): +62" in text
    assert "119 ext 8" not in text  # an Indonesian short code does not work from abroad


@pytest.mark.parametrize("language", ["id", "en", "ms"])
def test_every_line_is_in_the_workers_language(sheet, language) -> None:
    text = sheet.emergency(sheet.missions.route("MY", "kuching"), "MY", language)
    others = {"id": "Polisi dan ambulans", "en": "Local police and ambulance", "ms": "Polis dan"}
    assert others[language] in text


def test_every_number_has_a_source_and_waits_for_verification() -> None:
    raw = yaml.safe_load(CONTENT.emergency_lines_file.read_text("utf-8"))
    missions = yaml.safe_load(CONTENT.missions_file.read_text("utf-8"))
    entries: list[dict] = []
    for body in raw["countries"].values():
        for key in ("police", "ambulance", "labour_hotline"):
            if isinstance(body.get(key), dict):
                entries.append(body[key])
        entries += body.get("crisis_lines") or []
    for entry in entries:
        if entry.get("number"):
            assert entry.get("sources") and entry.get("verified") is False, entry
    for mission in missions["missions"]:
        if mission.get("hotline"):
            assert mission.get("sources") and mission.get("hotline_date"), mission["code"]
            assert mission.get("verified") is False
            assert re.fullmatch(r"\+[\d -]{6,20}", mission["hotline"]), mission["hotline"]
