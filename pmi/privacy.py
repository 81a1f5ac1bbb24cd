"""A worker's right to erasure (UU 27/2022): delete their messages, anonymise their cases.

Cases keep what statistics need (category, country, mission, priority, status, dates)
and lose everything that identifies or describes the person.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from pmi.cases import add_event
from pmi.models import Case, CaseEvent, Contact, InboundMessage, OutboundMessage, new_public_id

ANONYMISED = "anonymised"
PERSONAL_FIELDS = (
    "city",
    "employer",
    "agency",
    "description",
    "location",
    "phone",
    "safe_to_reply",
)


async def forget_contact(s: AsyncSession, contact: Contact) -> str:
    """Erase a contact's personal data; return the old conversation id (to erase in Rasa)."""
    old_conversation = contact.public_id
    await s.execute(delete(OutboundMessage).where(OutboundMessage.contact_id == contact.id))
    await s.execute(delete(InboundMessage).where(InboundMessage.contact_id == contact.id))
    cases = (
        await s.scalars(
            select(Case).where(
                (Case.contact_id == contact.id) | (Case.conversation_id == old_conversation)
            )
        )
    ).all()
    for case in cases:
        for field in PERSONAL_FIELDS:
            setattr(case, field, None)
        case.contact_id = None
        case.conversation_id = ANONYMISED
        events = (await s.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id))).all()
        for event in events:
            if "text" in (event.detail or {}):
                event.detail = {k: v for k, v in event.detail.items() if k != "text"}
        await add_event(s, case, ANONYMISED, {}, actor="worker")
    # A new conversation id: the bot starts afresh and nothing links back to the old one.
    contact.public_id = new_public_id()
    contact.language, contact.language_chosen, contact.handoff = None, False, False
    return old_conversation
