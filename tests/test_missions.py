"""Routing of countries and cities to the responsible mission."""

from __future__ import annotations

import pytest

from pmi.missions import Missions
from pmi.settings import load_settings


@pytest.fixture(scope="module")
def missions() -> Missions:
    return Missions.load(load_settings().content.missions_file)


@pytest.mark.parametrize(
    ("country", "city", "code"),
    [
        ("MY", None, "KBRI-KUALA-LUMPUR"),
        ("MY", "Shah Alam", "KBRI-KUALA-LUMPUR"),
        ("MY", "Johor Bahru", "KJRI-JOHOR-BAHRU"),
        ("MY", "tawau, sabah", "KRI-TAWAU"),
        ("MY", "Sabah", "KJRI-KOTA-KINABALU"),
        ("SA", "Jeddah", "KJRI-JEDDAH"),
        ("SA", "Riyadh", "KBRI-RIYADH"),
        ("tw", None, "KDEI-TAIPEI"),
        ("HK", None, "KJRI-HONG-KONG"),
        ("JP", "Osaka", "KJRI-OSAKA"),
    ],
)
def test_routes_to_the_mission_covering_the_place(missions, country, city, code) -> None:
    assert missions.route(country, city).code == code


@pytest.mark.parametrize("country", [None, "", "KH", "Kamboja"])
def test_unknown_country_goes_to_the_national_crisis_centre(missions, country) -> None:
    assert missions.route(country).code == missions.default.code == "NATIONAL-CRISIS"
