"""Outbox storage: claim, lease, release and record outbound messages (session first).

The delivery loop (`bot/outbox.py`) decides when and how often; these functions are what
it reads and writes. No lock is held over the network: a message is leased (due again only
after `LEASE`) in one short transaction, sent with none open, and recorded in another.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import Select, bindparam, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from pmi.db import utcnow
from pmi.messages import ERASURE_DONE, finish_erasure
from pmi.models import Contact, OutboundMessage, OutboundStatus

LEASE = timedelta(seconds=120)  # a claimed message is not due again while it is being sent
TEMPLATE = "template"  # kind of the re-opening template message, recorded once sent

Claim = Select[tuple[OutboundMessage, Contact]]


def claim_query(channels: Iterable[str]) -> Claim:
    """The oldest due message of `channels` whose contact has no earlier message pending.

    Build it once: composing the aliased query costs more CPU than running it. Two rows
    are locked, so that a worker that finds more than one due can wake another.
    """
    earlier = aliased(OutboundMessage)
    return (
        select(OutboundMessage, Contact)
        .join(Contact, Contact.id == OutboundMessage.contact_id)
        .where(
            OutboundMessage.status == OutboundStatus.PENDING,
            Contact.channel.in_(sorted(channels)),
            or_(
                OutboundMessage.next_attempt_at.is_(None),
                OutboundMessage.next_attempt_at <= bindparam("now"),
            ),
            ~exists().where(
                earlier.contact_id == OutboundMessage.contact_id,
                earlier.status == OutboundStatus.PENDING,
                earlier.id < OutboundMessage.id,
            ),
        )
        .order_by(OutboundMessage.id)
        .limit(2)
        .with_for_update(skip_locked=True, of=OutboundMessage)
    )


async def claim_due(
    s: AsyncSession, query: Claim
) -> tuple[tuple[OutboundMessage, Contact] | None, bool]:
    """Lease the oldest due message: (message and contact, or None; whether more is due)."""
    rows = (await s.execute(query, {"now": utcnow()})).all()
    if not rows:
        return None, False
    message, contact = rows[0][0], rows[0][1]
    message.attempts += 1
    message.next_attempt_at = utcnow() + LEASE
    return (message, contact), len(rows) > 1


async def has_pending(s: AsyncSession, contact_id: int) -> bool:
    """Whether the contact has a message still waiting (later ones must queue behind it)."""
    query = select(OutboundMessage.id).where(
        OutboundMessage.contact_id == contact_id,
        OutboundMessage.status == OutboundStatus.PENDING,
    )
    return await s.scalar(query.limit(1)) is not None


async def lease_new(s: AsyncSession, messages: Sequence[OutboundMessage]) -> None:
    """Add new messages leased to the caller, which sends them right after its commit."""
    until = utcnow() + LEASE
    for message in messages:
        message.next_attempt_at = until
    s.add_all(messages)
    await s.flush()


async def release(s: AsyncSession, message_ids: Sequence[int]) -> None:
    """End the lease of messages still pending: any worker may send them now."""
    await s.execute(
        update(OutboundMessage)
        .where(
            OutboundMessage.id.in_(message_ids),
            OutboundMessage.status == OutboundStatus.PENDING,
        )
        .values(next_attempt_at=None)
    )


async def mark_sent(
    s: AsyncSession, message_id: int, external_id: str | None, attempted: bool
) -> bool:
    """Mark a message sent in one statement; False if it was erased meanwhile.

    The delivered confirmation of an erasure also deletes its contact row.
    """
    row = (
        await s.execute(
            update(OutboundMessage)
            .where(OutboundMessage.id == message_id)
            .values(
                status=OutboundStatus.SENT,
                sent_at=utcnow(),
                next_attempt_at=None,
                last_error=None,
                external_id=external_id,
                attempts=OutboundMessage.attempts + int(attempted),
            )
            .returning(OutboundMessage.kind, OutboundMessage.contact_id)
        )
    ).first()
    if row is None:
        return False
    if row.kind == ERASURE_DONE:
        await finish_erasure(s, row.contact_id)
    return True


def add_template_sent(s: AsyncSession, contact_id: int, text: str, external_id: str) -> None:
    """Record the re-opening template a sender sent instead of a held message."""
    s.add(
        OutboundMessage(
            contact_id=contact_id,
            kind=TEMPLATE,
            text=text,
            status=OutboundStatus.SENT,
            sent_at=utcnow(),
            external_id=external_id,
        )
    )


async def reopened_since(s: AsyncSession, contact_id: int, since: datetime | None) -> bool:
    """Whether a re-opening template already went out since `since` (the worker's last
    message)."""
    query = select(OutboundMessage.id).where(
        OutboundMessage.contact_id == contact_id, OutboundMessage.kind == TEMPLATE
    )
    if since is not None:
        query = query.where(OutboundMessage.created_at > since)
    return await s.scalar(query.limit(1)) is not None
