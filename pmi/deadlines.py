"""Case deadlines: when the next step of a case is due, and which cases are overdue."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pmi.cases import OPEN
from pmi.db import utcnow
from pmi.deadline_settings import DeadlineSettings
from pmi.models import Case

FIRST_CONTACT = "first_contact"  # the next action of a case nobody has set one for


@dataclass
class Clock:
    """The time the console works with; tests move it (`offset`) instead of waiting."""

    now_fn: Callable[[], datetime] = utcnow
    offset: timedelta = field(default_factory=timedelta)

    def now(self) -> datetime:
        return self.now_fn() + self.offset


def later(start: datetime, hours: float, working_days: bool) -> datetime:
    """`hours` after `start`; with `working_days`, whole days land on Monday-Friday only."""
    if not working_days:
        return start + timedelta(hours=hours)
    days, rest = divmod(hours, 24)
    moment = start
    while days > 0:
        moment += timedelta(days=1)
        if moment.weekday() < 5:
            days -= 1
    moment += timedelta(hours=rest)
    while moment.weekday() >= 5:
        moment += timedelta(days=1)
    return moment


def first_due(case: Case, settings: DeadlineSettings) -> datetime:
    deadline = settings.of(case.priority, case.category)
    return later(case.created_at, deadline.first_contact_hours, deadline.working_days)


def follow_up_due(case: Case, settings: DeadlineSettings, now: datetime) -> datetime:
    deadline = settings.of(case.priority, case.category)
    return later(now, deadline.follow_up_hours, working_days=False)  # follow-ups: calendar days


def due(case: Case, settings: DeadlineSettings) -> datetime:
    """When the next step is due: the date staff set, else the first-contact deadline."""
    return case.due_at or first_due(case, settings)


def is_overdue(case: Case, settings: DeadlineSettings, now: datetime) -> bool:
    return case.status in OPEN and due(case, settings) < now


def overdue_first(rows: Sequence[Case], settings: DeadlineSettings, now: datetime) -> list[Case]:
    """The cases in their order, overdue ones first (a stable sort)."""
    return sorted(rows, key=lambda c: not is_overdue(c, settings, now))
