"""Referral of a case to a domestic authority (data/referral_bodies.yml).

A mission cannot act on an agency in Indonesia or on a trafficker in the worker's village;
KP2MI, a BP3MI, the police or BPJS Ketenagakerjaan can. A referral keeps the case open with
status `referred`, records who it went to and their reference number, and sets the next step
to checking the outcome by a follow-up date, so a referred case cannot be forgotten.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import yaml
from sqlalchemy.ext.asyncio import AsyncSession

from pmi import cases, staff
from pmi.cases import OPEN
from pmi.db import utcnow
from pmi.models import Case, CaseStatus, StaffUser

MAX_REFERENCE = 64
MAX_NOTE = 1000


class ReferralError(ValueError):
    """A referral was refused; the message says why."""


@dataclass(frozen=True)
class ReferralBodies:
    labels: dict[str, dict[str, str]]  # body id -> language -> label
    with_province: frozenset[str]  # bodies named per province (a BP3MI, a Disnaker)
    provinces: tuple[str, ...]

    @classmethod
    def load(cls, path: Path) -> ReferralBodies:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        labels = {item["id"]: dict(item["label"]) for item in data["bodies"]}
        for body, names in labels.items():
            if not {"id", "en"} <= names.keys():
                raise ValueError(f"{path}: body {body!r} needs 'id' and 'en' labels")
        with_province = frozenset(i["id"] for i in data["bodies"] if i.get("province"))
        return cls(labels, with_province, tuple(data["provinces"]))

    def name(self, body: str, province: str | None = None, language: str = "id") -> str:
        """What the console shows: "BP3MI provinsi asal: Jawa Timur"."""
        names = self.labels.get(body, {})
        label = names.get(language) or names.get("id") or body
        return f"{label}: {province}" if province else label


@dataclass(frozen=True)
class Referral:
    body: str
    province: str | None
    reference: str  # the body's own number for the case; may be added later
    follow_up: datetime
    note: str


def check(bodies: ReferralBodies, referral: Referral) -> None:
    """Refuse a referral the list does not allow, with a message for the officer."""
    if referral.body not in bodies.labels:
        raise ReferralError("choose an authority from the list")
    if referral.body in bodies.with_province and referral.province not in bodies.provinces:
        raise ReferralError("choose the worker's province for this authority")
    if len(referral.reference) > MAX_REFERENCE or len(referral.note) > MAX_NOTE:
        raise ReferralError("reference number or note too long")


async def refer(
    s: AsyncSession,
    case: Case,
    bodies: ReferralBodies,
    referral: Referral,
    by: StaffUser,
    notice: str | None = None,
) -> None:
    """Refer (or update the referral of) an open case; timeline, audit, the worker's notice."""
    check(bodies, referral)
    if case.status not in OPEN:
        raise ReferralError("a closed case is not referred")
    province = referral.province if referral.body in bodies.with_province else None
    target = f"{referral.body}:{province}" if province else referral.body
    case.referred_to = target
    case.referral_ref = referral.reference.strip() or None
    case.next_action = f"Cek hasil rujukan ke {bodies.name(referral.body, province)}"
    case.due_at, case.updated_at = referral.follow_up, utcnow()
    detail = {
        "to": target,
        "ref": case.referral_ref,
        "due": referral.follow_up.isoformat(timespec="minutes"),
        "text": referral.note.strip() or None,
    }
    actor = f"staff:{by.username}"
    await cases.add_event(s, case, "referral", detail, actor=actor)
    await cases.change_status(s, case, CaseStatus.REFERRED, actor, notice)
    await staff.audit(s, by, "case_refer", case.reference, {"to": target, "ref": detail["ref"]})


def split_target(referred_to: str | None) -> tuple[str | None, str | None]:
    """`"bp3mi:Jawa Timur"` -> `("bp3mi", "Jawa Timur")`."""
    if not referred_to:
        return None, None
    body, _, province = referred_to.partition(":")
    return body, province or None
