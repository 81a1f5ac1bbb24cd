"""Workers' data rights (UU 27/2022): see what is stored, erase it; masking for staff views.

Erasure deletes a contact's messages, files and subscriptions and anonymises their cases:
cases keep what statistics need (category, country, mission, priority, status, dates) and
lose everything that identifies or describes the person, including the link to the
conversation. Rasa's copy is deleted through the erasure queue (`pmi.erasure`), and the
contact row itself (the WhatsApp number or Telegram chat id) once the confirmation is
delivered (`pmi.messages.finish_erasure`). Retention (`pmi.retention`) anonymises old closed
cases with the same function.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pmi import erasure
from pmi.cases import add_event
from pmi.db import utcnow
from pmi.models import (
    AnnouncementSubscription,
    Case,
    CaseEvent,
    Contact,
    InboundMessage,
    Media,
    OutboundMessage,
    new_public_id,
)

ANONYMISED = "anonymised"  # the kind of the case event that records it
PERSONAL_FIELDS = (
    "city",
    "employer",
    "agency",
    "description",
    "location",
    "phone",
    "safe_to_reply",
    "safe_contact",
)


async def anonymise_case(s: AsyncSession, case: Case, actor: str) -> None:
    """Clear a case's personal fields, unlink it from the worker, strip free text from events."""
    for field in PERSONAL_FIELDS:
        setattr(case, field, None)
    case.contact_id = None
    case.conversation_id = None  # no sender id can match an erased worker's case
    events = (await s.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id))).all()
    for event in events:
        if "text" in (event.detail or {}):
            event.detail = {k: v for k, v in event.detail.items() if k != "text"}
    await add_event(s, case, ANONYMISED, {}, actor=actor)


async def forget_contact(s: AsyncSession, contact: Contact) -> list[str]:
    """Erase a contact's personal data, and queue Rasa's copy for deletion.

    Returns the storage keys of the contact's files, to delete from the media store once
    the transaction is committed.
    """
    old_conversation = contact.public_id
    files = [
        key
        for key in await s.scalars(select(Media.storage_key).where(Media.contact_id == contact.id))
        if key
    ]
    await s.execute(delete(OutboundMessage).where(OutboundMessage.contact_id == contact.id))
    await s.execute(delete(InboundMessage).where(InboundMessage.contact_id == contact.id))
    # (their photos and voice notes go with the messages; the files are swept by the app)
    await s.execute(
        delete(AnnouncementSubscription).where(AnnouncementSubscription.contact_id == contact.id)
    )
    cases = (
        await s.scalars(
            select(Case).where(
                (Case.contact_id == contact.id) | (Case.conversation_id == old_conversation)
            )
        )
    ).all()
    for case in cases:
        await anonymise_case(s, case, actor="worker")
    await erasure.queue(s, old_conversation)
    # A new conversation id: the bot starts afresh and nothing links back to the old one.
    contact.public_id = new_public_id()
    contact.language, contact.language_chosen, contact.handoff = None, False, False
    contact.unsafe_since = contact.pending_confirm = contact.pending_confirm_at = None
    contact.erased_at = utcnow()
    return files


# --- what is stored about a worker (/dataku) ------------------------------------------


@dataclass(frozen=True)
class CaseSummary:
    reference: str
    status: str
    category: str
    priority: str
    created_at: datetime
    phone: str | None  # masked
    consent_version: str | None
    consent_at: datetime | None


@dataclass(frozen=True)
class DataSummary:
    """What the service keeps about one contact, without any free text they wrote."""

    channel: str
    language: str | None
    since: datetime
    messages_in: int
    messages_out: int
    first_message_at: datetime | None
    cases: list[CaseSummary]


async def data_summary(s: AsyncSession, contact: Contact) -> DataSummary:
    """Collect counts, dates and case metadata of a contact (for the worker's own view)."""
    messages_in, first_at = (
        await s.execute(
            select(func.count(InboundMessage.id), func.min(InboundMessage.received_at)).where(
                InboundMessage.contact_id == contact.id
            )
        )
    ).one()
    messages_out = await s.scalar(
        select(func.count(OutboundMessage.id)).where(OutboundMessage.contact_id == contact.id)
    )
    cases = (
        await s.scalars(
            select(Case)
            .where((Case.contact_id == contact.id) | (Case.conversation_id == contact.public_id))
            .order_by(Case.id)
        )
    ).all()
    return DataSummary(
        channel=contact.channel,
        language=contact.language,
        since=contact.created_at,
        messages_in=messages_in or 0,
        messages_out=messages_out or 0,
        # min() over a UTCDateTime column comes back raw from SQLite: naive means UTC.
        first_message_at=_aware(first_at),
        cases=[
            CaseSummary(
                reference=c.reference,
                status=c.status,
                category=c.category,
                priority=c.priority,
                created_at=c.created_at,
                phone=mask_phone(c.phone) if c.phone else None,
                consent_version=c.consent_version,
                consent_at=c.consent_at,
            )
            for c in cases
        ],
    )


def _aware(value: datetime | str | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):  # SQLite aggregate results bypass the column type
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# --- masking -------------------------------------------------------------------------

MASK = "•"
_EMAIL = re.compile(r"(?<![\w.+-])([\w.+-]+)@([\w-]+(?:\.[\w-]+)+)")
# Passports (Indonesian: one or two letters and 7 digits, e.g. A1234567, X 1234567) and
# similar document numbers: letters followed by 6-8 digits, as a whole word.
_PASSPORT = re.compile(r"\b([A-Za-z]{1,2})\s?(\d{6,8})\b")
# Phone numbers: 8-15 digits with optional +, spaces, dashes and brackets between them,
# not part of a longer word, decimal number or ISO date.
_PHONE = re.compile(
    r"(?<![\w.:/-])(?!\d{4}-\d{2}-\d{2})\+?\(?\d(?:[ ()-]{0,2}\d){7,14}(?![\w]|\.\d)"
)


def mask_phone(phone: str) -> str:
    """Keep the country code and the last two digits: '+62 812-3456-7890' -> '+62•••••••••90'.

    For staff views, exports and logs where the number itself is not needed.
    """
    digits = re.sub(r"\D", "", phone)
    if len(digits) <= 4:
        return MASK * len(digits)
    head = "+" + digits[:2] if phone.strip().startswith("+") else digits[:1]
    hidden = len(digits) - (len(head.lstrip("+")) + 2)
    return head + MASK * hidden + digits[-2:]


def mask_text(text: str) -> str:
    """Mask e-mail addresses, passport and phone numbers inside free text (logs, exports)."""
    text = _EMAIL.sub(lambda m: MASK * 3 + "@" + m.group(2), text)
    text = _PASSPORT.sub(lambda m: m.group(1)[:1] + MASK * (len(m.group(2)) + 1), text)
    return _PHONE.sub(lambda m: mask_phone(m.group(0)), text)
