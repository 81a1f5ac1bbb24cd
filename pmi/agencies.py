"""The official registry of licensed placement companies (P3MI), imported from CSV."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from pmi.models import Agency, AgencyImport

# Legal-form words that workers add or drop freely ("PT", "P.T.", "Tbk", "CV").
_LEGAL_FORMS = {"pt", "p t", "tbk", "cv", "persero", "perseroan", "terbatas", "ltd", "sdn", "bhd"}
NAME_COLUMNS = (
    "nama_perusahaan",
    "nama p3mi",
    "nama_p3mi",
    "nama",
    "name",
    "company",
    "perusahaan",
)
LICENCE_COLUMNS = ("nomor_izin", "no_izin", "sip3mi", "izin", "licence", "license", "nomor sip3mi")
REGION_COLUMNS = ("provinsi", "province", "kota", "city", "alamat", "address")
MAX_ROWS = 50_000


class RegistryError(ValueError):
    """The CSV cannot be imported; the message says why."""


def match_key(name: str) -> str:
    """Normalise a company name: case, punctuation and legal form do not matter."""
    text = re.sub(r"\bp\s*\.\s*t\s*\.?", " pt ", name.lower())
    words = re.findall(r"[a-z0-9]+", text)
    return " ".join(w for w in words if w not in _LEGAL_FORMS)


def _column(header: list[str], candidates: tuple[str, ...]) -> int | None:
    def norm(text: str) -> str:
        return re.sub(r"[\s_-]+", "_", text.strip().lower())

    normalised = [norm(h) for h in header]
    for name in candidates:
        if norm(name) in normalised:
            return normalised.index(norm(name))
    return None


@dataclass(frozen=True)
class Row:
    name: str
    licence: str | None
    region: str | None


def parse_registry(data: bytes) -> list[Row]:
    """Parse a registry CSV (comma or semicolon, UTF-8 with or without BOM)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RegistryError("the file is not UTF-8 text") from exc
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    header = next(reader, None)
    if not header:
        raise RegistryError("the file is empty")
    name_col = _column(header, NAME_COLUMNS)
    if name_col is None:
        raise RegistryError(f"no company name column; expected one of: {', '.join(NAME_COLUMNS)}")
    licence_col, region_col = _column(header, LICENCE_COLUMNS), _column(header, REGION_COLUMNS)
    rows: list[Row] = []
    for line in reader:
        if len(rows) >= MAX_ROWS:
            raise RegistryError(f"more than {MAX_ROWS} rows")
        if name_col >= len(line) or not line[name_col].strip():
            continue

        def cell(col: int | None, row: list[str] = line) -> str | None:
            return row[col].strip()[:120] or None if col is not None and col < len(row) else None

        rows.append(Row(line[name_col].strip()[:255], cell(licence_col), cell(region_col)))
    if not rows:
        raise RegistryError("no agency rows found")
    return rows


async def replace_registry(s: AsyncSession, rows: list[Row], source: str) -> AgencyImport:
    """Replace the registry with a new import in one transaction."""
    await s.execute(delete(Agency))
    record = AgencyImport(source=source[:255], row_count=len(rows))
    s.add(record)
    await s.flush()
    s.add_all(
        Agency(
            import_id=record.id,
            name=row.name,
            match_key=match_key(row.name),
            licence=row.licence,
            region=row.region,
        )
        for row in rows
    )
    await s.flush()
    return record


@dataclass(frozen=True)
class Lookup:
    listed: bool
    name: str | None
    as_of: datetime


async def lookup(s: AsyncSession, written_name: str) -> Lookup | None:
    """Is this agency in the latest registry? None when no registry was ever imported."""
    latest = await s.scalar(select(AgencyImport).order_by(AgencyImport.id.desc()).limit(1))
    if latest is None:
        return None
    key = match_key(written_name)
    found = await s.scalar(select(Agency).where(Agency.match_key == key).limit(1)) if key else None
    return Lookup(found is not None, found.name if found else None, latest.imported_at)
