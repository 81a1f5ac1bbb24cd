"""How cases end: the outcomes staff choose from (data/case_outcomes.yml) and closing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml
from sqlalchemy.ext.asyncio import AsyncSession

from pmi import cases, staff
from pmi.cases import OPEN
from pmi.models import Case, CaseStatus, StaffUser

MAX_NOTE = 4000


class OutcomeError(ValueError):
    """Closing was refused; the message says why."""


@dataclass(frozen=True)
class Outcomes:
    labels: dict[str, dict[str, str]]  # outcome id -> language -> label

    @classmethod
    def load(cls, path: Path) -> Outcomes:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        labels = {item["id"]: dict(item["label"]) for item in data["outcomes"]}
        for outcome, names in labels.items():
            if not {"id", "en"} <= names.keys():
                raise ValueError(f"{path}: outcome {outcome!r} needs 'id' and 'en' labels")
        return cls(labels)

    def label(self, outcome: str, language: str = "id") -> str:
        names = self.labels.get(outcome, {})
        return names.get(language) or names.get("id") or outcome


async def close_case(
    s: AsyncSession,
    case: Case,
    outcomes: Outcomes,
    outcome: str,
    note: str,
    by: StaffUser,
    notice: str | None = None,
) -> None:
    """Close an open case with an outcome and a closing note (timeline and audit log)."""
    if outcome not in outcomes.labels:
        raise OutcomeError("choose an outcome from the list")
    note = note.strip()
    if not note or len(note) > MAX_NOTE:
        raise OutcomeError(f"a closing note of 1-{MAX_NOTE} characters is required")
    if case.status not in OPEN and case.status != CaseStatus.RESOLVED:
        raise OutcomeError("the case is already closed")
    actor = f"staff:{by.username}"
    case.outcome = outcome
    await cases.add_event(s, case, "outcome", {"outcome": outcome, "text": note}, actor=actor)
    await cases.change_status(s, case, CaseStatus.CLOSED, actor, notice)
    await staff.audit(s, by, "case_close", case.reference, {"outcome": outcome})
