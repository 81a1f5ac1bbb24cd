"""Safety of the reply channel: nothing the system sends on its own reaches a watched phone.

When a worker says it is not safe to write to her chat (an employer or agent may read her
phone), the contact is marked unsafe. From then on, messages she did not just ask for (a
case status notice, a staff message, an announcement, a reminder) are held, not sent,
unless an officer overrides it on the case page after a warning (audited by the console).
Replies to what she writes still go: she is writing at that moment. When she says it is
safe again, the held messages are released.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pmi.db import utcnow
from pmi.models import Case, CaseStatus, Contact, OutboundMessage, OutboundStatus

# Kinds of outbound messages sent without the worker having just written.
AUTOMATIC_KINDS = frozenset({"case", "staff", "announcement", "reminder"})
OPEN = (CaseStatus.NEW, CaseStatus.ACKNOWLEDGED, CaseStatus.IN_PROGRESS, CaseStatus.REFERRED)


def held_status(contact_unsafe: bool, kind: str, override: bool = False) -> str:
    """The status a new outbound message starts with."""
    if contact_unsafe and kind in AUTOMATIC_KINDS and not override:
        return OutboundStatus.HELD
    return OutboundStatus.PENDING


async def is_unsafe(s: AsyncSession, contact_id: int) -> bool:
    since = await s.scalar(select(Contact.unsafe_since).where(Contact.id == contact_id))
    return since is not None


async def mark_unsafe(s: AsyncSession, contact: Contact) -> None:
    """Hold everything automatic from now on, and what is already waiting to be sent."""
    if contact.unsafe_since is None:
        contact.unsafe_since = utcnow()
    await s.execute(
        update(OutboundMessage)
        .where(
            OutboundMessage.contact_id == contact.id,
            OutboundMessage.status == OutboundStatus.PENDING,
            OutboundMessage.kind.in_(sorted(AUTOMATIC_KINDS)),
        )
        .values(status=OutboundStatus.HELD)
    )


async def mark_safe(s: AsyncSession, contact: Contact) -> int:
    """The worker says it is safe again: release what was held; return how many."""
    contact.unsafe_since = None
    released = await s.execute(
        update(OutboundMessage)
        .where(
            OutboundMessage.contact_id == contact.id,
            OutboundMessage.status == OutboundStatus.HELD,
        )
        .values(status=OutboundStatus.PENDING, next_attempt_at=None)
    )
    await s.execute(
        update(Case)
        .where(Case.contact_id == contact.id, Case.status.in_(OPEN))
        .values(safe_to_reply="yes", updated_at=utcnow())
    )
    return released.rowcount or 0  # type: ignore[attr-defined]


async def release_held(s: AsyncSession, contact_id: int) -> int:
    """An officer's audited override: send the held messages of this chat now."""
    released = await s.execute(
        update(OutboundMessage)
        .where(
            OutboundMessage.contact_id == contact_id,
            OutboundMessage.status == OutboundStatus.HELD,
        )
        .values(status=OutboundStatus.PENDING, next_attempt_at=None)
    )
    return released.rowcount or 0  # type: ignore[attr-defined]


async def held_count(s: AsyncSession, contact_id: int) -> int:
    rows = await s.scalars(
        select(OutboundMessage.id).where(
            OutboundMessage.contact_id == contact_id,
            OutboundMessage.status == OutboundStatus.HELD,
        )
    )
    return len(rows.all())
