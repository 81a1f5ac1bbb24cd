"""pmi/intake.py: what a complaint message already says, and what a typed answer means."""

from __future__ import annotations

from functools import cache

import pytest
import yaml

from pmi.countries import CountryNames
from pmi.intake import FormWords, Intake, find_agency, find_employer, find_phone
from pmi.labels import CaseLabels
from pmi.places import Places
from tests.support import ROOT


@cache
def intake() -> Intake:
    return Intake(
        FormWords.load(ROOT / "data" / "form_words.yml"),
        CaseLabels.load(ROOT / "data" / "case_labels.yml"),
        Places.load(ROOT / "data" / "places.yml"),
        CountryNames.load(ROOT / "rasa_project" / "data" / "nlu" / "entities.yml"),
    )


def test_the_opening_message_gives_problem_place_and_story() -> None:
    text = "sy mau lapor, gaji 3 bulan gk dibayar majikan di kuching malaysia"
    reading = intake().read(text)
    assert reading.problem == "unpaid_wages" and reading.country == "MY"
    assert reading.place is not None and reading.place.name == "Kuching"
    assert reading.story == text


def test_a_bare_wish_to_report_is_not_a_story() -> None:
    for text in ("sy mau lapor", "mau lapor gaji", "I want to file a complaint"):
        assert intake().read(text).story is None, text


def test_a_place_alone_gives_its_country() -> None:
    reading = intake().read("sy di johor bahru mau buat laporan")
    assert reading.country == "MY" and reading.place and reading.place.name == "Johor Bahru"
    assert reading.problem is None


@pytest.mark.parametrize(
    ("text", "phone"),
    [
        ("nomor sy +60 12-345 6789 ya", "+60123456789"),
        ("telpon 0912 555 000", "0912555000"),
        ("gaji 3 bulan 2500 ringgit", None),
    ],
)
def test_phone_numbers_in_a_sentence(text: str, phone: str | None) -> None:
    assert find_phone(text) == phone


def test_an_agency_named_in_a_sentence() -> None:
    assert find_agency("sy diberangkatkan pt maju jaya abadi di jakarta") == "PT maju jaya abadi"
    assert find_agency("PT. Sinar Harapan yang kirim saya") == "PT Sinar Harapan"
    assert find_agency("tidak ada agensi") is None


def test_every_menu_label_typed_back_is_its_category() -> None:
    labels = yaml.safe_load((ROOT / "data" / "case_labels.yml").read_text(encoding="utf-8"))
    for code, entry in labels["categories"].items():
        if not entry.get("number"):
            continue  # not on the menu (emergency, self-harm: other paths)
        for language in ("id", "en"):
            assert intake().labels.category(entry[language]) == code, (code, entry[language])
        assert intake().labels.category(str(entry["number"])) == code


@pytest.mark.parametrize(
    ("kind", "text", "option"),
    [
        ("contact_method", "1", "chat"),
        ("contact_method", "lewat chat ini", "chat"),
        ("contact_method", "Chat ini", "chat"),
        ("contact_method", "chat aja", "chat"),
        ("contact_method", "Through this chat", "chat"),
        ("contact_method", "wa ini aja kak", "chat"),
        ("contact_method", "2", "phone"),
        ("contact_method", "Lewat telepon", "phone"),
        ("contact_method", "telpon aja", "phone"),
        ("contact_method", "By phone", "phone"),
        ("contact_method", "chat atau telpon", None),
        ("resume_question", "iya lanjut", "continue"),
        ("resume_question", "Lanjut", "continue"),
        ("resume_question", "2", "later"),
        ("resume_question", "nanti aja", "later"),
        ("resume_question", "tidak", "later"),  # a bare no keeps what she told
        ("resume_question", "Later", "later"),
        ("resume_question", "3", "cancel"),
        ("resume_draft", "Lanjutkan", "continue"),
        ("resume_draft", "Mulai baru", "restart"),
        ("resume_draft", "Start a new one", "restart"),
        ("resume_draft", "Cancel it", "cancel"),
        ("confirm", "bener", "yes"),
        ("confirm", "Ya", "yes"),
        ("confirm", "Bukan", "no"),
        ("confirm", "salah kak", "no"),
    ],
)
def test_typed_choices(kind: str, text: str, option: str | None) -> None:
    assert intake().words.choice(kind, text) == option


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("ubah kota", "city"),
        ("kotanya salah", "city"),
        ("change city", "city"),
        ("ganti majikan", "employer"),
        ("ubah cerita", "description"),
        ("ubah", None),
        ("kota kuching", None),
    ],
)
def test_corrections_name_a_field(text: str, field: str | None) -> None:
    assert intake().words.field_to_change(text) == field


def test_questions_are_told_from_answers() -> None:
    words = intake().words
    assert words.is_question("berapa biaya ke taiwan")
    assert words.is_question("how much is it?")
    assert not words.is_question("kuching")
    assert not words.is_question("PT Maju Jaya")


def test_a_short_honest_story_has_substance() -> None:
    assert intake().has_substance("dipukul")
    assert intake().has_substance("gaji ga dibayar")
    assert not intake().has_substance("ok")
    assert not intake().has_substance("ya")
    assert not intake().has_substance("?")


def test_an_employer_named_plainly() -> None:
    assert find_employer("gaji gk dibayar, majikan sy namanya Mrs Lin di taichung") == "Mrs Lin"
    assert find_employer("my employer is Mdm Tay and she keeps my passport") == "Mdm Tay"
    assert find_employer("majikan saya bernama Abdullah") == "Abdullah"
    assert find_employer("majikan sy jahat bgt") is None
    assert find_employer("my employer is very angry") is None


def test_a_country_is_named_in_the_worker_s_language() -> None:
    names = CountryNames.load(
        ROOT / "rasa_project" / "data" / "nlu" / "entities.yml", ROOT / "data" / "country_names.yml"
    )
    assert names.name_of("SA", "en") == "Saudi Arabia" and names.name_of("SA", "id") == "Arab Saudi"
    assert names.name_of("JP", "ms") == "Jepun" and names.name_of("KR", "en") == "South Korea"
    assert names.name_of("TW", "en") == "Taiwan"
    missions = yaml.safe_load((ROOT / "data" / "missions.yml").read_text(encoding="utf-8"))
    for code in {c for m in missions["missions"] for c in m.get("countries", [])}:
        assert {"id", "en", "ms"} <= names.labels[code].keys(), code
