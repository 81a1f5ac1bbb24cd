"""The case-work part of the dashboard: who carries the open cases, what is overdue, how cases
ended, and how long a worker waits for a first word from a person."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from statistics import median

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pmi import deadlines
from pmi.cases import OPEN
from pmi.deadline_settings import DeadlineSettings
from pmi.models import Case, CaseEvent, StaffUser

UNASSIGNED = "(belum ada petugas)"
# Timeline kinds that are a person writing to the worker.
FIRST_CONTACT_KINDS = ("message", "message_unsafe_override")


@dataclass(frozen=True)
class Casework:
    open_by_owner: list[tuple[str, int]]  # open cases per officer, unassigned included
    overdue_by_mission: list[tuple[str, int]]  # open cases past their due date, now
    by_outcome: list[tuple[str, int]]  # closed cases filed in the period, per outcome
    median_first_contact_hours: float | None  # filed -> first staff message to the worker


def _ranked(counts: Counter) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


async def compute(
    s: AsyncSession,
    settings: DeadlineSettings,
    *,
    since: datetime,
    now: datetime,
    mission_code: str | None = None,
) -> Casework:
    mine = [] if mission_code is None else [Case.mission_code == mission_code]
    open_cases = (await s.scalars(select(Case).where(Case.status.in_(OPEN), *mine))).all()
    names = dict((await s.execute(select(StaffUser.id, StaffUser.username))).tuples().all())
    owners = Counter(
        names.get(c.owner_id, UNASSIGNED) if c.owner_id else UNASSIGNED for c in open_cases
    )
    late = Counter(c.mission_code for c in open_cases if deadlines.is_overdue(c, settings, now))

    period = [Case.created_at >= since, Case.created_at <= now, *mine]
    outcomes = await s.execute(
        select(Case.outcome, func.count())
        .where(Case.outcome.is_not(None), *period)
        .group_by(Case.outcome)
    )
    first = await s.execute(
        select(Case.created_at, func.min(CaseEvent.at))
        .join(CaseEvent, CaseEvent.case_id == Case.id)
        .where(CaseEvent.kind.in_(FIRST_CONTACT_KINDS), *period)
        .group_by(Case.id, Case.created_at)
    )
    waits = []
    for created, at in first.all():
        if isinstance(at, str):  # SQLite aggregates bypass the column type
            at = datetime.fromisoformat(at).replace(tzinfo=created.tzinfo)
        waits.append((at - created).total_seconds() / 3600)
    return Casework(
        open_by_owner=_ranked(owners),
        overdue_by_mission=_ranked(late),
        by_outcome=_ranked(Counter(dict(outcomes.tuples().all()))),
        median_first_contact_hours=median(waits) if waits else None,
    )
