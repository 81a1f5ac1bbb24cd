"""Numbers for the console's dashboard, computed from the database.

Everything is limited to a period (cases filed since `since`) and, for mission staff, to
their mission: conversation figures then cover the workers whose cases the mission has.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from statistics import median

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pmi.corrections import FALLBACK_INTENT
from pmi.models import Case, CaseEvent, CaseStatus, Contact, InboundMessage

DONE = (CaseStatus.RESOLVED, CaseStatus.CLOSED)


@dataclass(frozen=True)
class Dashboard:
    since: datetime
    total_cases: int
    cases_per_week: list[tuple[date, int]]  # Monday of each ISO week, oldest first
    by_category: list[tuple[str, int]]
    by_country: list[tuple[str, int]]
    by_mission: list[tuple[str, int]]
    median_ack_minutes: float | None
    median_resolve_hours: float | None
    classified_messages: int  # workers' messages with an intent from Rasa
    fallback_messages: int
    languages: list[tuple[str, int]]  # conversations (contacts) per language

    @property
    def fallback_rate(self) -> float | None:
        if not self.classified_messages:
            return None
        return self.fallback_messages / self.classified_messages


def week_start(moment: datetime) -> date:
    day = moment.date()
    return day - timedelta(days=day.weekday())


def _counted(rows: list[tuple[str | None, int]]) -> list[tuple[str, int]]:
    """Most frequent first, then by name; unknown values as "?"."""
    return sorted(((key or "?", n) for key, n in rows), key=lambda kv: (-kv[1], kv[0]))


async def _resolve_hours(
    s: AsyncSession, scope: list, created_by_id: dict[int, datetime]
) -> list[float]:
    """Hours to resolve: the first move to resolved/closed, from each case's timeline."""
    resolved: dict[int, datetime] = {}
    events = await s.execute(
        select(CaseEvent.case_id, CaseEvent.at, CaseEvent.detail)
        .join(Case, Case.id == CaseEvent.case_id)
        .where(CaseEvent.kind == "status", *scope)
        .order_by(CaseEvent.id)
    )
    for case_id, at, detail in events.all():
        if (detail or {}).get("to") in DONE and case_id not in resolved:
            resolved[case_id] = at
    return [
        (at - created_by_id[case_id]).total_seconds() / 3600 for case_id, at in resolved.items()
    ]


async def compute(
    s: AsyncSession, *, since: datetime, now: datetime, mission_code: str | None = None
) -> Dashboard:
    """The dashboard's numbers for cases filed in [since, now] (one mission or all)."""
    scope = [Case.created_at >= since, Case.created_at <= now]
    if mission_code is not None:
        scope.append(Case.mission_code == mission_code)

    async def grouped(column) -> list[tuple[str, int]]:  # type: ignore[no-untyped-def]
        rows = await s.execute(select(column, func.count()).where(*scope).group_by(column))
        return _counted([(key, n) for key, n in rows.all()])

    filed = (
        await s.execute(select(Case.id, Case.created_at, Case.acknowledged_at).where(*scope))
    ).all()
    weeks = Counter(week_start(created) for _, created, _ in filed)
    first, last = week_start(since), week_start(now)
    per_week = []
    while first <= last:
        per_week.append((first, weeks.get(first, 0)))
        first += timedelta(days=7)
    acks = [(ack - created).total_seconds() / 60 for _, created, ack in filed if ack is not None]

    created_by_id = {case_id: created for case_id, created, _ in filed}
    resolve_hours = await _resolve_hours(s, scope, created_by_id)

    messages: Select = select(func.count()).select_from(InboundMessage)
    contacts: Select = select(Contact.language, func.count(Contact.id.distinct()))
    messages = messages.where(
        InboundMessage.received_at >= since, InboundMessage.received_at <= now
    )
    contacts = contacts.where(Contact.last_inbound_at >= since)
    if mission_code is not None:
        theirs = select(Case.contact_id).where(Case.mission_code == mission_code)
        messages = messages.where(InboundMessage.contact_id.in_(theirs))
        contacts = contacts.where(Contact.id.in_(theirs))
    classified = await s.scalar(messages.where(InboundMessage.intent.is_not(None))) or 0
    fallback = await s.scalar(messages.where(InboundMessage.intent == FALLBACK_INTENT)) or 0
    languages = (await s.execute(contacts.group_by(Contact.language))).all()

    return Dashboard(
        since=since,
        total_cases=len(filed),
        cases_per_week=per_week,
        by_category=await grouped(Case.category),
        by_country=await grouped(Case.country),
        by_mission=await grouped(Case.mission_code),
        median_ack_minutes=median(acks) if acks else None,
        median_resolve_hours=median(resolve_hours) if resolve_hours else None,
        classified_messages=classified,
        fallback_messages=fallback,
        languages=_counted([(lang, n) for lang, n in languages]),
    )
