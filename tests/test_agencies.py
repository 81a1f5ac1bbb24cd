"""The P3MI registry import and the agency check, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from pmi import agencies

CSV = (
    "\ufeffNo;Nama Perusahaan;Nomor Izin;Provinsi\n"
    "1;PT. Sinar Jaya Abadi;KEP-123/2023;Jawa Timur\n"
    "2;PT Bunga Mas Sejahtera;KEP-456/2024;NTB\n"
    "3;;;\n"
).encode()


@pytest.mark.parametrize(
    ("written", "key"),
    [
        ("PT. Sinar Jaya Abadi", "sinar jaya abadi"),
        ("pt sinar jaya abadi", "sinar jaya abadi"),
        ("Sinar-Jaya Abadi", "sinar jaya abadi"),
        ("P.T Sinar Jaya Abadi Tbk", "sinar jaya abadi"),
    ],
)
def test_match_key_ignores_case_punctuation_and_legal_form(written, key) -> None:
    assert agencies.match_key(written) == key


def test_parse_registry_finds_the_columns_and_skips_blank_rows() -> None:
    rows = agencies.parse_registry(CSV)
    assert [(r.name, r.licence, r.region) for r in rows] == [
        ("PT. Sinar Jaya Abadi", "KEP-123/2023", "Jawa Timur"),
        ("PT Bunga Mas Sejahtera", "KEP-456/2024", "NTB"),
    ]


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", "empty"),
        (b"foo,bar\n1,2\n", "no company name column"),
        (b"nama\n", "no agency rows"),
        (b"\xff\xfe\x00n", "not UTF-8"),
    ],
)
def test_bad_registry_files_are_refused_with_a_reason(data, error) -> None:
    with pytest.raises(agencies.RegistryError, match=error):
        agencies.parse_registry(data)


async def test_lookup_before_and_after_import(sessions) -> None:
    async with sessions() as s:
        assert await agencies.lookup(s, "PT Sinar Jaya Abadi") is None  # nothing imported yet
    async with sessions() as s, s.begin():
        record = await agencies.replace_registry(s, agencies.parse_registry(CSV), "list.csv")
    async with sessions() as s:
        listed = await agencies.lookup(s, "sinar jaya abadi")
        unknown = await agencies.lookup(s, "PT Maju Mundur")
    assert listed is not None and listed.listed and listed.name == "PT. Sinar Jaya Abadi"
    assert listed.as_of == record.imported_at
    assert unknown is not None and not unknown.listed


async def test_a_new_import_replaces_the_old_registry(sessions) -> None:
    async with sessions() as s, s.begin():
        await agencies.replace_registry(s, agencies.parse_registry(CSV), "old.csv")
        await agencies.replace_registry(
            s, agencies.parse_registry(b"nama\nPT Baru Saja\n"), "new.csv"
        )
    async with sessions() as s:
        old = await agencies.lookup(s, "Sinar Jaya Abadi")
        new = await agencies.lookup(s, "baru saja")
    assert old is not None and not old.listed
    assert new is not None and new.listed
