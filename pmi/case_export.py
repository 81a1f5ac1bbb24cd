"""CSV export of cases: no personal data unless asked for and allowed; safe in spreadsheets."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import datetime

from pmi.models import Case, Role, StaffUser

# What statistics and follow-up need without identifying or describing the worker.
BASE_COLUMNS = (
    "reference",
    "priority",
    "status",
    "category",
    "country",
    "mission_code",
    "language",
    "created_at",
    "acknowledged_at",
    "updated_at",
    "consent_version",
    "outcome",
    "referred_to",
    "referral_ref",
    "due_at",
)
# The same fields a worker's erasure removes (pmi.privacy), plus how to reach them.
PERSONAL_COLUMNS = (
    "city",
    "employer",
    "agency",
    "description",
    "location",
    "safe_to_reply",
    "contact_method",
    "phone",
)
# A cell starting with one of these is a formula to Excel/LibreOffice (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def may_export_personal_data(user: StaffUser) -> bool:
    """Admins, and mission staff (for their own mission's cases, the only ones they see).

    Operators read cases in the console for the hotline, but a bulk copy of workers'
    personal data is not needed for that work, so they export without it.
    """
    return user.role in (Role.ADMIN, Role.MISSION)


def safe_cell(value: object) -> str:
    """The cell's text; formulas are defused by a leading apostrophe."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def to_csv(rows: Iterable[Case], personal: bool) -> str:
    """The cases as CSV (with a BOM so spreadsheet programs read UTF-8)."""
    columns = BASE_COLUMNS + (PERSONAL_COLUMNS if personal else ())
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for case in rows:
        writer.writerow([safe_cell(getattr(case, column)) for column in columns])
    return out.getvalue()
