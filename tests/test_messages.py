"""Storage of contacts, inbox and outbox, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import func, select

from pmi import messages
from pmi.models import InboundMessage, OutboundStatus


async def test_contact_is_created_once(sessions) -> None:
    async with sessions() as s, s.begin():
        first = await messages.get_or_create_contact(s, "webchat", "u1")
        again = await messages.get_or_create_contact(s, "webchat", "u1")
        other = await messages.get_or_create_contact(s, "telegram", "u1")
    assert first.id == again.id
    assert other.id != first.id
    assert len(first.public_id) == 32 and first.public_id != other.public_id


async def test_duplicate_inbound_is_ignored_and_the_first_kept(sessions) -> None:
    async with sessions() as s, s.begin():
        contact = await messages.get_or_create_contact(s, "telegram", "42")
        first = await messages.store_inbound(s, contact, "telegram", "update-1", "halo")
        duplicate = await messages.store_inbound(s, contact, "telegram", "update-1", "halo lagi")
        count = await s.scalar(select(func.count()).select_from(InboundMessage))
    assert first is not None
    assert duplicate is None
    assert count == 1
    async with sessions() as s:
        stored = await s.get(InboundMessage, first.id)
    assert stored is not None and stored.text == "halo"


async def test_same_external_id_on_another_channel_is_not_a_duplicate(sessions) -> None:
    async with sessions() as s, s.begin():
        contact = await messages.get_or_create_contact(s, "telegram", "42")
        assert await messages.store_inbound(s, contact, "telegram", "7", "a")
        assert await messages.store_inbound(s, contact, "whatsapp", "7", "b")


async def test_pending_messages_come_out_in_order(sessions) -> None:
    async with sessions() as s, s.begin():
        contact = await messages.get_or_create_contact(s, "webchat", "u2")
        for i in range(3):
            await messages.store_inbound(s, contact, "webchat", f"m{i}", f"text {i}")
    seen = []
    for _ in range(3):
        async with sessions() as s, s.begin():
            message = await messages.next_pending_inbound(s, contact.id)
            assert message is not None
            seen.append(message.text)
            await messages.mark_inbound_done(s, message, "id")
    async with sessions() as s:
        assert await messages.next_pending_inbound(s, contact.id) is None
        assert list(await messages.contacts_with_pending_inbound(s)) == []
    assert seen == ["text 0", "text 1", "text 2"]


async def test_outbox_is_taken_once_in_order(sessions) -> None:
    async with sessions() as s, s.begin():
        contact = await messages.get_or_create_contact(s, "webchat", "u3")
        await messages.add_outbound(s, contact.id, "one", [{"title": "A", "payload": "/a"}])
        await messages.add_outbound(s, contact.id, "two")
    async with sessions() as s, s.begin():
        taken = await messages.take_pending_outbound(s, contact.id)
    async with sessions() as s, s.begin():
        again = await messages.take_pending_outbound(s, contact.id)
    assert [m.text for m in taken] == ["one", "two"]
    assert taken[0].buttons == [{"title": "A", "payload": "/a"}]
    assert again == []
    async with sessions() as s:
        statuses = {m.status for m in await messages.take_pending_outbound(s, contact.id)}
    assert statuses <= {OutboundStatus.SENT}


async def test_one_holding_reply_per_outage(sessions) -> None:
    async with sessions() as s, s.begin():
        contact = await messages.get_or_create_contact(s, "webchat", "u4")
        assert not await messages.held_since_last_reply(s, contact.id, "holding")
        await messages.add_outbound(s, contact.id, "please wait", kind="holding")
        assert await messages.held_since_last_reply(s, contact.id, "holding")
        await messages.add_outbound(s, contact.id, "the answer")
        assert not await messages.held_since_last_reply(s, contact.id, "holding")
