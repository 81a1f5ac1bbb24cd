"""Safety of the reply channel (pmi/safety.py): nothing automatic reaches an unsafe chat."""

from __future__ import annotations

from sqlalchemy import select

from pmi import handoff, messages, safety
from pmi.models import OutboundMessage, OutboundStatus


async def _statuses(s, contact_id: int) -> dict[str, str]:  # type: ignore[no-untyped-def]
    rows = await s.scalars(select(OutboundMessage).where(OutboundMessage.contact_id == contact_id))
    return {m.text: m.status for m in rows}


async def test_automatic_messages_are_held_and_replies_still_go(sessions) -> None:
    async with sessions() as s, s.begin():
        contact = await messages.get_or_create_contact(s, "telegram", "unsafe-1")
        await messages.add_outbound(s, contact.id, "queued before", kind="case")
        await safety.mark_unsafe(s, contact)
        await messages.add_outbound(s, contact.id, "status notice", kind="case")
        await handoff.staff_reply(s, contact, "staff message")
        await messages.add_outbound(s, contact.id, "announcement", kind="announcement")
        await messages.add_outbound(s, contact.id, "reply to her message")  # kind reply
        await handoff.staff_reply(s, contact, "sent anyway", override=True)
        assert await _statuses(s, contact.id) == {
            "queued before": OutboundStatus.HELD,
            "status notice": OutboundStatus.HELD,
            "staff message": OutboundStatus.HELD,
            "announcement": OutboundStatus.HELD,
            "reply to her message": OutboundStatus.PENDING,
            "sent anyway": OutboundStatus.PENDING,
        }
        assert await safety.held_count(s, contact.id) == 4


async def test_safe_again_releases_what_was_held(sessions) -> None:
    async with sessions() as s, s.begin():
        contact = await messages.get_or_create_contact(s, "whatsapp", "unsafe-2")
        await safety.mark_unsafe(s, contact)
        await messages.add_outbound(s, contact.id, "status notice", kind="case")
        assert await safety.mark_safe(s, contact) == 1
        assert contact.unsafe_since is None
        assert await _statuses(s, contact.id) == {"status notice": OutboundStatus.PENDING}
        await messages.add_outbound(s, contact.id, "later notice", kind="case")
        assert (await _statuses(s, contact.id))["later notice"] == OutboundStatus.PENDING


async def test_an_officers_override_releases_the_held_messages(sessions) -> None:
    async with sessions() as s, s.begin():
        contact = await messages.get_or_create_contact(s, "telegram", "unsafe-3")
        await safety.mark_unsafe(s, contact)
        await handoff.staff_reply(s, contact, "one")
        await handoff.staff_reply(s, contact, "two")
        assert await safety.release_held(s, contact.id) == 2
        assert contact.unsafe_since is not None  # still unsafe for what comes next
        assert set((await _statuses(s, contact.id)).values()) == {OutboundStatus.PENDING}
