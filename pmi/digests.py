"""The daily list of overdue cases, one message per mission to its staff chat.

A case whose next step is past due is marked in the console, but nobody opens the console on
a bad day; once a day each mission's chat gets its overdue cases (reference, priority,
category, how late; no name, place or story). "Once" holds with several app processes and
restarts: the digest of a mission and day is a row with a unique key (`Digest`), written in
the same transaction as its outbound message, so a second process inserts nothing.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pmi import deadlines
from pmi.alerts import ALERT_KIND, STAFF_CHANNEL
from pmi.cases import OPEN
from pmi.deadline_settings import DeadlineSettings
from pmi.messages import add_outbound, get_or_create_contact
from pmi.models import Case, Digest

MAX_LISTED = 20  # references in one message; the rest are counted


@dataclass(frozen=True)
class Late:
    reference: str
    priority: str
    category: str
    late: timedelta


async def overdue_by_mission(
    s: AsyncSession, settings: DeadlineSettings, now: datetime
) -> dict[str, list[Late]]:
    """Open cases past their due date, per mission, the latest first.

    Read in Python, not SQL: a case nobody set a next step for is due by its first-contact
    deadline, which depends on priority, category and working days (`pmi.deadlines`)."""
    rows = (await s.scalars(select(Case).where(Case.status.in_(OPEN)))).all()
    found: dict[str, list[Late]] = defaultdict(list)
    for case in rows:
        if deadlines.is_overdue(case, settings, now):
            late = now - deadlines.due(case, settings)
            found[case.mission_code].append(
                Late(case.reference, case.priority, case.category, late)
            )
    return {code: sorted(late, key=lambda c: -c.late) for code, late in found.items()}


async def claim(s: AsyncSession, mission_code: str, day: date, kind: str = "overdue") -> bool:
    """Take the digest of this mission and day; False if it was taken already."""
    try:
        async with s.begin_nested():
            s.add(Digest(kind=kind, mission_code=mission_code, day=day.isoformat()))
    except IntegrityError:
        return False
    return True


async def queue(s: AsyncSession, chat_id: str, text: str) -> None:
    """One message to a staff chat, through the outbox like every alert."""
    chat = await get_or_create_contact(s, STAFF_CHANNEL, chat_id)
    await add_outbound(s, chat.id, text, kind=ALERT_KIND)
