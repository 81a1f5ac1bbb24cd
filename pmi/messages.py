"""Contacts, inbox and outbox queries. Each function takes the session first."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, literal, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pmi import safety
from pmi.db import utcnow
from pmi.models import (
    Contact,
    InboundMessage,
    InboundStatus,
    Media,
    OutboundMessage,
    OutboundStatus,
)

# The kind of the confirmation of an erasure: once it is delivered, the contact row goes.
ERASURE_DONE = "erasure_done"
# `last_error` of a reply held until the worker writes again (WhatsApp's 24-hour window).
WINDOW_CLOSED = "outside the 24-hour window: waiting for the worker to write"
# Channels with such a window (WhatsApp Cloud API: free-form replies only within 24 hours).
WINDOWED_CHANNELS = frozenset({"whatsapp"})


async def get_contact(s: AsyncSession, channel: str, channel_user_id: str) -> Contact | None:
    return await s.scalar(
        select(Contact).where(
            Contact.channel == channel, Contact.channel_user_id == channel_user_id
        )
    )


async def get_or_create_contact(s: AsyncSession, channel: str, channel_user_id: str) -> Contact:
    """Return the contact, creating it; safe when two processes race to create it."""
    contact = await get_contact(s, channel, channel_user_id)
    if contact is not None:
        contact.erased_at = None  # she writes again after an erasure: a new conversation
        return contact
    try:
        async with s.begin_nested():
            contact = Contact(channel=channel, channel_user_id=channel_user_id)
            s.add(contact)
    except IntegrityError:
        contact = await get_contact(s, channel, channel_user_id)
        if contact is None:  # pragma: no cover - the row that won the race was deleted
            raise
    return contact


async def set_language(s: AsyncSession, contact: Contact, language: str) -> None:
    """Store the contact's language now (the row may be detached: the lease of a turn's
    replies carries the object)."""
    contact.language = language
    await s.execute(update(Contact).where(Contact.id == contact.id).values(language=language))


async def store_inbound(
    s: AsyncSession, contact: Contact, channel: str, external_id: str, text: str
) -> InboundMessage | None:
    """Store an inbound message; return None when it is a duplicate (same channel id).

    One `INSERT ... ON CONFLICT DO NOTHING RETURNING`: a duplicate costs no savepoint and
    leaves the transaction usable.
    """
    dialect = s.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    now = utcnow()
    message = await s.scalar(
        insert(InboundMessage)
        .values(
            contact_id=contact.id,
            channel=channel,
            external_id=external_id,
            text=text,
            status=InboundStatus.PENDING,
            attempts=0,
            received_at=now,
        )
        .on_conflict_do_nothing(index_elements=["channel", "external_id"])
        .returning(InboundMessage)
    )
    if message is None:
        return None
    contact.last_inbound_at = now
    if channel in WINDOWED_CHANNELS:
        # The worker wrote: replies held back for the 24-hour window can go now.
        await s.execute(
            update(OutboundMessage)
            .where(
                OutboundMessage.contact_id == contact.id,
                OutboundMessage.status == OutboundStatus.PENDING,
                OutboundMessage.last_error == WINDOW_CLOSED,
            )
            .values(next_attempt_at=None)
        )
    return message


async def next_pending_inbound(s: AsyncSession, contact_id: int) -> InboundMessage | None:
    """The oldest unprocessed message of a contact (messages are processed in order)."""
    return await s.scalar(
        select(InboundMessage)
        .where(
            InboundMessage.contact_id == contact_id,
            InboundMessage.status == InboundStatus.PENDING,
        )
        .order_by(InboundMessage.id)
        .limit(1)
    )


async def next_pending_with_contact(
    s: AsyncSession, contact_id: int, *, received_since: datetime | None = None
) -> tuple[Contact, InboundMessage, str | None, int] | None:
    """The contact, its oldest unprocessed message, the kind of file it carries (if any),
    and how many messages the contact sent since `received_since` (0 if not given).

    One query: the relay reads this for every message it processes.
    """
    recent: Any = literal(0)
    if received_since is not None:
        recent = (
            select(func.count(InboundMessage.id))
            .where(
                InboundMessage.contact_id == contact_id,
                InboundMessage.received_at >= received_since,
            )
            .scalar_subquery()
        )
    row = (
        await s.execute(
            select(Contact, InboundMessage, Media.kind, recent)
            .join(InboundMessage, InboundMessage.contact_id == Contact.id)
            .outerjoin(Media, Media.inbound_id == InboundMessage.id)
            .where(Contact.id == contact_id, InboundMessage.status == InboundStatus.PENDING)
            .order_by(InboundMessage.id)
            .limit(1)
        )
    ).first()
    return (row[0], row[1], row[2], int(row[3] or 0)) if row else None


async def finish_inbound(
    s: AsyncSession,
    inbound_id: int,
    language: str,
    intent: str | None = None,
    confidence: float | None = None,
) -> bool:
    """Mark a pending message processed; False if it is not pending any more.

    One UPDATE, which also takes the row lock: of two processes finishing the same turn
    (possible if a per-contact lock was lost with its connection), only the first records it.
    """
    done = await s.scalar(
        update(InboundMessage)
        .where(InboundMessage.id == inbound_id, InboundMessage.status == InboundStatus.PENDING)
        .values(
            status=InboundStatus.DONE,
            language=language,
            processed_at=utcnow(),
            intent=intent,
            confidence=confidence,
        )
        .returning(InboundMessage.id)
    )
    return done is not None


async def has_pending_after(s: AsyncSession, contact_id: int, inbound_id: int) -> bool:
    """Whether the contact has a pending message after this one (already committed)."""
    found = await s.scalar(
        select(InboundMessage.id)
        .where(
            InboundMessage.contact_id == contact_id,
            InboundMessage.status == InboundStatus.PENDING,
            InboundMessage.id > inbound_id,
        )
        .limit(1)
    )
    return found is not None


async def has_reply(s: AsyncSession, inbound_id: int, kind: str) -> bool:
    """Whether a reply of this kind was already queued for the inbound message."""
    found = await s.scalar(
        select(OutboundMessage.id)
        .where(OutboundMessage.inbound_id == inbound_id, OutboundMessage.kind == kind)
        .limit(1)
    )
    return found is not None


async def contacts_with_pending_inbound(s: AsyncSession) -> Sequence[int]:
    rows = await s.scalars(
        select(InboundMessage.contact_id)
        .where(InboundMessage.status == InboundStatus.PENDING)
        .group_by(InboundMessage.contact_id)
        .order_by(InboundMessage.contact_id)
    )
    return rows.all()


async def mark_inbound_done(s: AsyncSession, message: InboundMessage, language: str) -> None:
    message.status = InboundStatus.DONE
    message.language = language
    message.processed_at = utcnow()


async def add_outbound(
    s: AsyncSession,
    contact_id: int,
    text: str,
    buttons: list[dict[str, Any]] | None = None,
    *,
    inbound_id: int | None = None,
    kind: str = "reply",
    override: bool = False,
) -> OutboundMessage:
    """Queue a message; an automatic one is held if the chat is not safe (`pmi.safety`).

    `override`: an officer chose to send it anyway (the console audits that).
    """
    status = OutboundStatus.PENDING
    if kind in safety.AUTOMATIC_KINDS and not override:
        status = safety.held_status(await safety.is_unsafe(s, contact_id), kind)
    message = OutboundMessage(
        contact_id=contact_id,
        inbound_id=inbound_id,
        text=text,
        buttons=buttons or [],
        kind=kind,
        status=status,
    )
    s.add(message)
    await s.flush()
    return message


async def outbound_by_external_id(s: AsyncSession, external_id: str) -> OutboundMessage | None:
    """The message a provider's status callback is about."""
    return await s.scalar(select(OutboundMessage).where(OutboundMessage.external_id == external_id))


async def inbound_of_conversation(
    s: AsyncSession, public_id: str, message_id: int
) -> InboundMessage | None:
    """One message of the conversation `public_id` (None if it belongs to another)."""
    return await s.scalar(
        select(InboundMessage)
        .join(Contact, Contact.id == InboundMessage.contact_id)
        .where(Contact.public_id == public_id, InboundMessage.id == message_id)
    )


async def held_since_last_reply(s: AsyncSession, contact_id: int, holding_kind: str) -> bool:
    """True if a holding reply was queued after the contact's last real reply."""
    last_holding = await s.scalar(
        select(func.max(OutboundMessage.id)).where(
            OutboundMessage.contact_id == contact_id, OutboundMessage.kind == holding_kind
        )
    )
    if last_holding is None:
        return False
    last_reply = await s.scalar(
        select(func.max(OutboundMessage.id)).where(
            OutboundMessage.contact_id == contact_id, OutboundMessage.kind != holding_kind
        )
    )
    return last_reply is None or last_holding > last_reply


async def take_pending_outbound(s: AsyncSession, contact_id: int) -> list[OutboundMessage]:
    """Mark a contact's pending replies as sent and return them, oldest first.

    Used by channels that deliver in the HTTP response (the web chat).
    """
    rows = (
        await s.scalars(
            select(OutboundMessage)
            .where(
                OutboundMessage.contact_id == contact_id,
                OutboundMessage.status == OutboundStatus.PENDING,
            )
            .order_by(OutboundMessage.id)
            .with_for_update(skip_locked=True)
        )
    ).all()
    if rows:
        await s.execute(
            update(OutboundMessage)
            .where(OutboundMessage.id.in_([m.id for m in rows]))
            .values(
                status=OutboundStatus.SENT, sent_at=utcnow(), attempts=OutboundMessage.attempts + 1
            )
        )
        if any(m.kind == ERASURE_DONE for m in rows):
            await finish_erasure(s, contact_id)
    return list(rows)


async def finish_erasure(s: AsyncSession, contact_id: int) -> None:
    """An erasure's confirmation was delivered: delete the contact row (her channel id), and
    with it the confirmation, unless she has written again since."""
    await s.execute(delete(Contact).where(Contact.id == contact_id, Contact.erased_at.is_not(None)))


async def conversation(
    s: AsyncSession, contact_id: int, limit: int = 500
) -> list[InboundMessage | OutboundMessage]:
    """A contact's messages both ways, in time order (for the console)."""
    inbound = (
        await s.scalars(
            select(InboundMessage)
            .where(InboundMessage.contact_id == contact_id)
            .order_by(InboundMessage.id.desc())
            .limit(limit)
        )
    ).all()
    outbound = (
        await s.scalars(
            select(OutboundMessage)
            .where(OutboundMessage.contact_id == contact_id)
            .order_by(OutboundMessage.id.desc())
            .limit(limit)
        )
    ).all()

    def when(m: InboundMessage | OutboundMessage):  # type: ignore[no-untyped-def]
        return m.received_at if isinstance(m, InboundMessage) else m.created_at

    return sorted([*inbound, *outbound], key=when)


async def handoff_contacts(s: AsyncSession) -> Sequence[Contact]:
    """Conversations a person has taken over, the most recently active first."""
    rows = await s.scalars(
        select(Contact)
        .where(Contact.handoff.is_(True))
        .order_by(Contact.last_inbound_at.desc().nulls_last())
    )
    return rows.all()
