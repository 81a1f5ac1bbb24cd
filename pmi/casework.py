"""Case work: who owns a case (assign, take, "my cases"), its next step, and its transfer."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pmi import cases, messages, staff
from pmi.cases import OPEN
from pmi.db import utcnow
from pmi.missions import Mission
from pmi.models import Case, Role, StaffUser

MAX_REASON = 1000


class CaseworkError(ValueError):
    """A case-work change was refused; the message says why."""


async def officers_for(s: AsyncSession, case: Case) -> Sequence[StaffUser]:
    """Active staff who may own this case: its mission's officers, operators and admins."""
    query = select(StaffUser).where(
        StaffUser.active.is_(True),
        (StaffUser.role != Role.MISSION) | (StaffUser.mission_code == case.mission_code),
    )
    return (await s.scalars(query.order_by(StaffUser.username))).all()


def may_own(officer: StaffUser, case: Case) -> bool:
    """Whether `officer` may own `case` (mission staff only their own mission's cases)."""
    if not officer.active:
        return False
    return officer.role != Role.MISSION or officer.mission_code == case.mission_code


async def assign(s: AsyncSession, case: Case, officer: StaffUser, by: StaffUser) -> bool:
    """Make `officer` the owner; on the timeline and in the audit log. False if no change."""
    if not may_own(officer, case):
        raise CaseworkError("this officer may not own this mission's case")
    if case.owner_id == officer.id:
        return False
    previous = await s.get(StaffUser, case.owner_id) if case.owner_id else None
    case.owner_id, case.updated_at = officer.id, utcnow()
    detail = {"from": previous.username if previous else None, "to": officer.username}
    await cases.add_event(s, case, "owner", detail, actor=f"staff:{by.username}")
    action = "case_reassign" if previous else "case_assign"
    await staff.audit(s, by, action, case.reference, detail)
    return True


async def unassigned_count(s: AsyncSession, mission_code: str | None) -> int:
    """Open cases nobody owns (in one mission, or all when `mission_code` is None)."""
    query = select(func.count()).where(Case.owner_id.is_(None), Case.status.in_(OPEN))
    if mission_code is not None:
        query = query.where(Case.mission_code == mission_code)
    return await s.scalar(query) or 0


async def owner_names(s: AsyncSession, rows: Sequence[Case]) -> dict[int, str]:
    """User names of the owners of these cases, by user id (for the inbox)."""
    ids = {c.owner_id for c in rows if c.owner_id is not None}
    if not ids:
        return {}
    users = await s.execute(select(StaffUser.id, StaffUser.username).where(StaffUser.id.in_(ids)))
    return dict(users.tuples().all())


async def set_next_step(
    s: AsyncSession, case: Case, action: str, due_at: datetime, by: StaffUser
) -> None:
    """Record what must happen next and by when; on the timeline and in the audit log."""
    if case.status not in OPEN:
        raise CaseworkError("a closed case has no next step")
    case.next_action, case.due_at, case.updated_at = action, due_at, utcnow()
    detail = {"text": action, "due": due_at.isoformat(timespec="minutes")}
    await cases.add_event(s, case, "next_step", detail, actor=f"staff:{by.username}")
    await staff.audit(s, by, "case_next_step", case.reference, {"due": detail["due"]})


async def transfer(
    s: AsyncSession, case: Case, to: Mission, reason: str, by: StaffUser, notice: str | None
) -> str:
    """Move the case to another mission (the worker moved, or a wrong country or city).

    The old mission loses it at once (its staff get 404), the new one is alerted, the owner is
    cleared (an officer of the old mission may not own it), and the worker is told through the
    outbox, where `pmi.safety` holds the notice when her chat is not safe. Returns the old code.
    """
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON:
        raise CaseworkError(f"a reason of 1-{MAX_REASON} characters is required")
    if case.status not in OPEN:
        raise CaseworkError("a closed case is not transferred")
    old = case.mission_code
    if to.code == old:
        raise CaseworkError("the case is already with this mission")
    case.mission_code, case.owner_id, case.updated_at = to.code, None, utcnow()
    detail = {"from": old, "to": to.code, "text": reason}
    actor = f"staff:{by.username}"
    await cases.add_event(s, case, "transfer", detail, actor=actor)
    await cases.queue_alert(s, case, to.code, "rerouted")
    await staff.audit(s, by, "case_transfer", case.reference, detail)
    if notice and case.contact_id is not None:
        await messages.add_outbound(s, case.contact_id, notice, kind="case")
    return old
