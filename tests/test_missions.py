"""Routing of countries and places (cities, areas, free-text locations) to the mission."""

from __future__ import annotations

import pytest

from pmi.missions import Missions
from pmi.places import Places
from pmi.settings import load_settings

CONTENT = load_settings().content


@pytest.fixture(scope="module")
def missions() -> Missions:
    return Missions.load(CONTENT.missions_file, CONTENT.places_file)


@pytest.fixture(scope="module")
def places() -> Places:
    return Places.load(CONTENT.places_file)


@pytest.mark.parametrize(
    ("country", "city", "code"),
    [
        ("MY", None, "KBRI-KUALA-LUMPUR"),
        ("MY", "Shah Alam", "KBRI-KUALA-LUMPUR"),
        ("MY", "Johor Bahru", "KJRI-JOHOR-BAHRU"),
        ("MY", "tawau, sabah", "KRI-TAWAU"),
        ("MY", "Sabah", "KJRI-KOTA-KINABALU"),
        ("MY", "Sandakan", "KJRI-KOTA-KINABALU"),
        ("MY", "kuching", "KJRI-KUCHING"),
        ("MY", "sy di miri sarawak", "KJRI-KUCHING"),
        ("MY", "dkt pasar skudai", "KJRI-JOHOR-BAHRU"),
        ("MY", "Melaka", "KJRI-JOHOR-BAHRU"),
        ("MY", "alor setar kedah", "KJRI-PENANG"),
        ("SA", "Jeddah", "KJRI-JEDDAH"),
        ("SA", "Riyadh", "KBRI-RIYADH"),
        ("SA", "dammam", "KBRI-RIYADH"),
        ("tw", None, "KDEI-TAIPEI"),
        ("TW", "kaohsiung", "KDEI-TAIPEI"),
        ("HK", None, "KJRI-HONG-KONG"),
        ("MO", None, "KJRI-HONG-KONG"),
        ("JP", "Osaka", "KJRI-OSAKA"),
        ("JP", "kobe", "KJRI-OSAKA"),
        ("JP", "tokyo", "KBRI-TOKYO"),
        ("AE", "dubai", "KJRI-DUBAI"),
        ("DE", "münchen", "KJRI-FRANKFURT"),
        ("TH", "hat yai", "KRI-SONGKHLA"),
        ("KH", "sihanoukville", "KBRI-PHNOM-PENH"),
    ],
)
def test_routes_to_the_mission_covering_the_place(missions, country, city, code) -> None:
    assert missions.route(country, city).code == code


@pytest.mark.parametrize(
    ("place", "code"),
    [
        ("sy di johor bahru", "KJRI-JOHOR-BAHRU"),
        ("kuching", "KJRI-KUCHING"),
        ("jeddah", "KJRI-JEDDAH"),
        ("osaka", "KJRI-OSAKA"),
        ("kaohsiung", "KDEI-TAIPEI"),
    ],
)
def test_a_known_place_alone_tells_the_country(missions, place, code) -> None:
    assert missions.route(None, place).code == code


@pytest.mark.parametrize("country", [None, "", "XX", "Narnia"])
def test_unknown_country_goes_to_the_national_crisis_centre(missions, country) -> None:
    assert missions.route(country).code == missions.default.code == "NATIONAL-CRISIS"


def test_every_region_a_mission_covers_exists_in_the_gazetteer(missions, places) -> None:
    known = {(p.country, p.region) for key in places._index for p in places._index[key]}
    for mission in missions.by_code.values():
        for region in mission.regions:
            assert any((c, region) in known for c in mission.countries), (mission.code, region)


@pytest.mark.parametrize(
    ("answer", "name"),
    [("kaoshiung", "Kaohsiung"), ("kuchng", "Kuching"), ("johor bharu", "Johor Bahru"),
     ("taicung", "Taichung"), ("München", "Munich")],
)  # fmt: skip
def test_a_short_answer_may_be_a_misspelling(places, answer, name) -> None:
    found = places.find(answer, fuzzy=True)
    assert found is not None and found.name == name


@pytest.mark.parametrize(
    "text", ["selamat", "karawang", "sy dr deli serdang", "semarang", "pontianak", "terima kasih"]
)
def test_indonesian_towns_and_everyday_words_are_not_destination_places(places, text) -> None:
    assert places.find(text, fuzzy=True) is None


def test_a_name_two_countries_share_needs_the_country(places) -> None:
    assert places.find("taiping") is None
    found = places.find("taiping", "MY")
    assert found is not None and found.country == "MY"
