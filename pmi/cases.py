"""Protection cases: references, creation, routing, timeline and staff alerts."""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pmi import messages
from pmi.db import utcnow
from pmi.knowledge import Replies
from pmi.labels import CaseLabels
from pmi.missions import Mission, Missions
from pmi.models import Case, CaseEvent, CaseStatus, Contact, Priority, StaffAlert

REFERENCE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
REFERENCE_RE = re.compile(r"\bPMI-([A-HJ-NP-Z2-9]{6})\b", re.IGNORECASE)
# Version of the consent text the worker agreed to (domain response utter_ask_consent).
CONSENT_VERSION = "consent-v1-2026-11"

CATEGORIES = (
    "unpaid_wages",
    "passport_held",
    "illegal_fees",
    "contract_mismatch",
    "abuse",
    "sexual_harassment",
    "trafficking",
    "illness_accident",
    "wants_to_go_home",
    "failed_to_depart",
    "other",
)
EMERGENCY = "emergency"
SELF_HARM = "self_harm"
TRANSCRIPT_BEFORE_CASE = timedelta(days=1)  # what mission staff read of the talk before a case
OPEN = (CaseStatus.NEW, CaseStatus.ACKNOWLEDGED, CaseStatus.IN_PROGRESS, CaseStatus.REFERRED)


def new_reference() -> str:
    """A case reference from a cryptographic random source: 32^6 ≈ 1.07e9 values."""
    return "PMI-" + "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(6))


def normalise_reference(text: str) -> str | None:
    """Find a reference in free text ("pmi-7kq2xr" -> "PMI-7KQ2XR")."""
    match = REFERENCE_RE.search(text or "")
    return f"PMI-{match.group(1).upper()}" if match else None


async def contact_for_conversation(s: AsyncSession, conversation_id: str) -> Contact | None:
    return await s.scalar(select(Contact).where(Contact.public_id == conversation_id))


async def case_by_reference(s: AsyncSession, reference: str) -> Case | None:
    return await s.scalar(select(Case).where(Case.reference == reference))


async def mission_has_contact(s: AsyncSession, contact_id: int, mission_code: str) -> bool:
    """Whether the contact has a case with this mission (what its staff may see of her)."""
    query = select(Case.id).where(Case.contact_id == contact_id, Case.mission_code == mission_code)
    return await s.scalar(query.limit(1)) is not None


async def add_event(
    s: AsyncSession, case: Case, kind: str, detail: dict[str, Any] | None = None, actor: str = "bot"
) -> CaseEvent:
    event = CaseEvent(case_id=case.id, kind=kind, actor=actor, detail=detail or {})
    s.add(event)
    await s.flush()
    return event


async def queue_alert(s: AsyncSession, case: Case, mission_code: str, reason: str) -> StaffAlert:
    alert = StaffAlert(case_id=case.id, mission_code=mission_code, reason=reason)
    s.add(alert)
    case.last_alert_at = utcnow()
    case.alert_count += 1
    await s.flush()
    await add_event(s, case, "alert", {"mission": mission_code, "reason": reason})
    return alert


async def create_case(
    s: AsyncSession,
    *,
    conversation_id: str,
    category: str,
    mission: Mission,
    priority: str = Priority.NORMAL,
    language: str = "id",
    consent_version: str | None = None,
    origin_message_id: str | None = None,
    **fields: Any,
) -> Case:
    """Store a new case with a unique reference and alert its mission's staff.

    With `origin_message_id` (the worker message that filed it) filing is idempotent: a
    turn run again for the same message returns the case it already filed.
    """
    if origin_message_id is not None:
        existing = await s.scalar(
            select(Case).where(
                Case.conversation_id == conversation_id,
                Case.origin_message_id == origin_message_id,
            )
        )
        if existing is not None:
            return existing
    contact = await contact_for_conversation(s, conversation_id)
    for _ in range(10):
        case = Case(
            reference=new_reference(),
            contact_id=contact.id if contact else None,
            conversation_id=conversation_id,
            category=category,
            priority=priority,
            status=CaseStatus.NEW,
            language=language,
            mission_code=mission.code,
            consent_version=consent_version,
            origin_message_id=origin_message_id,
            consent_at=utcnow() if consent_version else None,
            **fields,
        )
        try:
            async with s.begin_nested():
                s.add(case)
        except IntegrityError:
            continue  # reference collision: draw again
        break
    else:  # pragma: no cover - ten collisions in a row means the alphabet is exhausted
        raise RuntimeError("could not allocate a unique case reference")
    await add_event(
        s, case, "created", {"priority": priority, "category": category, "mission": mission.code}
    )
    reason = "new_urgent" if priority == Priority.URGENT else "new_case"
    await queue_alert(s, case, mission.code, reason)
    return case


async def emergency_in_handoff(
    s: AsyncSession, contact: Contact, missions: Missions, origin_message_id: str, text: str
) -> tuple[Case, Mission]:
    """A worker talking to a person wrote a word that always opens the emergency path.

    The bot is silent in a handoff, so the app raises it itself: the open urgent case is
    alerted again, or a new urgent case is filed, routed like her latest case.
    """
    latest = await s.scalar(
        select(Case).where(Case.contact_id == contact.id).order_by(Case.id.desc()).limit(1)
    )
    country, city = (latest.country, latest.city) if latest else (None, None)
    mission = missions.route(country, city)
    if latest is not None and latest.priority == Priority.URGENT and latest.status in OPEN:
        await add_event(s, latest, "message", {"text": text}, actor="worker")
        await queue_alert(s, latest, latest.mission_code, "repeat")
        return latest, missions.by_code.get(latest.mission_code, mission)
    case = await create_case(
        s,
        conversation_id=contact.public_id,
        category=EMERGENCY,
        mission=mission,
        priority=Priority.URGENT,
        language=contact.language or "id",
        country=country,
        city=city,
        description=text,
        origin_message_id=origin_message_id,
    )
    return case, mission


async def mission_window(s: AsyncSession, case: Case) -> tuple[datetime, datetime | None]:
    """The part of a worker's conversation a mission's staff may read for this case.

    From a day before the case was filed until the worker filed a case with another mission
    (her messages about that one are that mission's), or until now.
    """
    other = await s.scalar(
        select(func.min(Case.created_at)).where(
            Case.contact_id == case.contact_id,
            Case.mission_code != case.mission_code,
            Case.created_at > case.created_at,
        )
    )
    if isinstance(other, str):  # SQLite aggregates bypass the column type
        other = datetime.fromisoformat(other).replace(tzinfo=UTC)
    return case.created_at - TRANSCRIPT_BEFORE_CASE, other


async def cases_of_conversation(s: AsyncSession, conversation_id: str) -> Sequence[Case]:
    """The cases a worker filed from this conversation, newest first."""
    contact = await contact_for_conversation(s, conversation_id)
    owner = [Case.conversation_id == conversation_id]
    if contact is not None:
        owner.append(Case.contact_id == contact.id)
    rows = await s.scalars(select(Case).where(or_(*owner)).order_by(Case.id.desc()))
    return rows.all()


async def case_of_conversation(
    s: AsyncSession, reference: str, conversation_id: str
) -> Case | None:
    """A case by reference, only if this conversation filed it (else None, like unknown)."""
    for case in await cases_of_conversation(s, conversation_id):
        if case.reference == reference:
            return case
    return None


async def open_case_of_conversation(
    s: AsyncSession, reference: str, conversation_id: str, statuses: Sequence[str]
) -> Case | None:
    """The case `reference` of this conversation, if its status is one of `statuses`."""
    return await s.scalar(
        select(Case).where(
            Case.reference == reference,
            Case.conversation_id == conversation_id,
            Case.status.in_(statuses),
        )
    )


async def update_case(s: AsyncSession, case: Case, actor: str = "bot", **changes: Any) -> None:
    """Change case fields and record what changed (names only: values may be personal)."""
    changed = [k for k, v in changes.items() if getattr(case, k) != v]
    for key in changed:
        setattr(case, key, changes[key])
    if changed:
        case.updated_at = utcnow()
        await add_event(s, case, "updated", {"fields": changed}, actor=actor)


async def unacknowledged_urgent(s: AsyncSession, now: datetime, after: timedelta) -> Sequence[Case]:
    """Urgent cases nobody acknowledged whose last alert is older than `after`."""
    rows = await s.scalars(
        select(Case)
        .where(
            Case.priority == Priority.URGENT,
            Case.acknowledged_at.is_(None),
            Case.status == CaseStatus.NEW,
            Case.last_alert_at < now - after,
        )
        .order_by(Case.id)
        .with_for_update(skip_locked=True)
    )
    return rows.all()


def status_notice(case: Case, status: str, labels: CaseLabels, replies: Replies) -> str:
    """The message telling the worker, in their language, that their case changed."""
    return replies.get("case_status_changed", case.language).format(
        reference=case.reference, status=labels.label("status", status, case.language)
    )


async def change_status(
    s: AsyncSession, case: Case, status: str, actor: str, notice: str | None = None
) -> None:
    """Move a case to a new status, record it, and queue the notice for the worker."""
    if status not in CaseStatus.ALL:
        raise ValueError(f"unknown case status {status!r}")
    old = case.status
    if old == status:
        return
    now = utcnow()
    case.status, case.updated_at = status, now
    if status != CaseStatus.NEW and case.acknowledged_at is None:
        case.acknowledged_at = now
    await add_event(s, case, "status", {"from": old, "to": status}, actor=actor)
    if notice and case.contact_id is not None:
        await messages.add_outbound(s, case.contact_id, notice, kind="case")


async def visible_cases(
    s: AsyncSession,
    *,
    mission_code: str | None,
    filters: dict[str, Any],
    limit: int = 200,
) -> Sequence[Case]:
    """Cases for the inbox: urgent and unacknowledged first, then unassigned, then newest.

    `mission_code` restricts to one mission (mission staff); None shows all.
    """
    query = select(Case)
    if mission_code is not None:
        query = query.where(Case.mission_code == mission_code)
    for key in ("status", "priority", "mission_code", "country", "category", "owner_id"):
        if filters.get(key):
            query = query.where(getattr(Case, key) == filters[key])
    if filters.get("since"):
        query = query.where(Case.created_at >= filters["since"])
    if filters.get("until"):
        query = query.where(Case.created_at < filters["until"])
    urgent_first = (Case.priority == Priority.URGENT) & Case.acknowledged_at.is_(None)
    unassigned = Case.owner_id.is_(None) & Case.status.in_(OPEN)
    order = (urgent_first.desc(), unassigned.desc(), Case.created_at.desc())
    query = query.order_by(*order).limit(limit)
    return (await s.scalars(query)).all()


async def status_counts(s: AsyncSession, mission_code: str | None) -> dict[str, int]:
    query = select(Case.status, func.count()).group_by(Case.status)
    if mission_code is not None:
        query = query.where(Case.mission_code == mission_code)
    return {status: count for status, count in (await s.execute(query)).all()}


async def case_events(s: AsyncSession, case: Case) -> Sequence[CaseEvent]:
    rows = await s.scalars(
        select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.id)
    )
    return rows.all()


async def urgent_since(s: AsyncSession, mission_code: str | None, after_id: int) -> Sequence[Case]:
    """Urgent cases newer than `after_id` (the console polls this for live alerts)."""
    query = select(Case).where(Case.priority == Priority.URGENT, Case.id > after_id)
    if mission_code is not None:
        query = query.where(Case.mission_code == mission_code)
    return (await s.scalars(query.order_by(Case.id))).all()
