"""The outbox's bookkeeping with a stand-in channel (the real channels have their own tests)."""

from __future__ import annotations

import asyncio
import itertools
from datetime import timedelta

from sqlalchemy import delete, select

from bot.delivery import NotYet, Outgoing, RetryLater
from bot.outbox import DIRECT, MAX_ATTEMPTS, Outbox
from pmi.db import create_sessionmaker, utcnow
from pmi.models import Contact, OutboundMessage, OutboundStatus


class Flaky:
    """A channel whose sender has a bug for one chat."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, message: Outgoing) -> str | None:
        if message.chat_id == "broken":
            raise RuntimeError("a bug in the sender")
        self.sent.append(message.text)
        return f"id-{len(self.sent)}"


async def test_a_sender_bug_is_retried_with_backoff_then_given_up(sessions) -> None:
    async with sessions() as s, s.begin():
        broken, fine = (
            Contact(channel="x", channel_user_id="broken"),
            Contact(channel="x", channel_user_id="fine"),
        )
        s.add_all([broken, fine])
        await s.flush()
        s.add(OutboundMessage(contact_id=broken.id, text="first"))
        s.add(OutboundMessage(contact_id=fine.id, text="second"))
    channel = Flaky()
    outbox = Outbox(sessions, {"x": channel})
    assert await outbox.deliver_one() is False  # the bug: counted, not raised
    assert await outbox.deliver_one() is True  # the other chat is not held up
    assert channel.sent == ["second"]
    for _ in range(MAX_ATTEMPTS):
        async with sessions() as s, s.begin():
            row = await s.scalar(select(OutboundMessage).where(OutboundMessage.text == "first"))
            assert row is not None
            if row.status == OutboundStatus.FAILED:
                break
            assert row.next_attempt_at is not None
            assert row.next_attempt_at > utcnow() + timedelta(seconds=20)
            assert "unexpected error: RuntimeError" in (row.last_error or "")
            row.next_attempt_at = None  # time passes
        await outbox.deliver_one()
    assert row.status == OutboundStatus.FAILED and row.attempts == MAX_ATTEMPTS


class Paced:
    """A channel that allows one message per `interval` s per chat, or fails on demand."""

    def __init__(self, interval: float = 0.0) -> None:
        self.sent: list[tuple[str, str, float]] = []
        self.interval = interval
        self.fail: set[str] = set()  # texts answered with RetryLater

    async def send(self, message: Outgoing) -> str | None:
        now = asyncio.get_running_loop().time()
        last = max((t for chat, _, t in self.sent if chat == message.chat_id), default=None)
        if last is not None and now - last < self.interval:
            raise NotYet(self.interval - (now - last))
        if message.text in self.fail:
            raise RetryLater(5, "server error")
        self.sent.append((message.chat_id, message.text, now))
        return f"id-{len(self.sent)}"


async def _contact(s, chat: str = "c1") -> Contact:  # type: ignore[no-untyped-def]
    contact = Contact(channel="x", channel_user_id=chat)
    s.add(contact)
    await s.flush()
    return contact


def _replies(contact: Contact, *texts: str) -> list[OutboundMessage]:
    return [OutboundMessage(contact_id=contact.id, text=t) for t in texts]


async def _rows(sessions, contact: Contact) -> list[OutboundMessage]:  # type: ignore[no-untyped-def]
    async with sessions() as s:
        found = await s.scalars(
            select(OutboundMessage)
            .where(OutboundMessage.contact_id == contact.id)
            .order_by(OutboundMessage.id)
        )
        return list(found)


async def test_a_turn_is_sent_at_once_in_order_with_the_channel_pace(sessions) -> None:
    channel = Paced(interval=0.3)
    outbox = Outbox(sessions, {"x": channel})
    async with sessions() as s, s.begin():
        contact = await _contact(s)
        lease = await outbox.queue(s, contact, _replies(contact, "one", "two", "three"))
    assert lease is not None
    # Leased: no worker would take them meanwhile.
    assert await outbox.deliver_one() is None
    outbox.start(lease)
    await asyncio.wait_for(outbox.drain(), 10)
    assert [text for _, text, _ in channel.sent] == ["one", "two", "three"]
    times = [t for _, _, t in channel.sent]
    assert all(b - a >= 0.29 for a, b in itertools.pairwise(times))
    rows = await _rows(sessions, contact)
    assert [r.status for r in rows] == [OutboundStatus.SENT] * 3
    assert [r.attempts for r in rows] == [1, 1, 1]
    assert [r.external_id for r in rows] == ["id-1", "id-2", "id-3"]


async def test_replies_queued_behind_a_pending_one_wait_for_the_workers(sessions) -> None:
    channel = Paced()
    outbox = Outbox(sessions, {"x": channel})
    async with sessions() as s, s.begin():
        contact = await _contact(s)
        s.add(OutboundMessage(contact_id=contact.id, text="earlier"))
        await s.flush()
        assert await outbox.queue(s, contact, _replies(contact, "later")) is None
    assert await outbox.deliver(limit=10) == 2
    assert [text for _, text, _ in channel.sent] == ["earlier", "later"]


async def test_a_failed_direct_send_hands_the_rest_to_the_workers_in_order(sessions) -> None:
    channel = Paced()
    channel.fail.add("one")
    outbox = Outbox(sessions, {"x": channel})
    async with sessions() as s, s.begin():
        contact = await _contact(s)
        lease = await outbox.queue(s, contact, _replies(contact, "one", "two"))
    assert lease is not None
    outbox.start(lease)
    await asyncio.wait_for(outbox.drain(), 10)
    assert channel.sent == []
    one, two = await _rows(sessions, contact)
    assert one.status == two.status == OutboundStatus.PENDING
    assert one.attempts == 1 and one.next_attempt_at is not None  # backing off
    assert two.attempts == 0 and two.next_attempt_at is None  # released, behind "one"
    assert await outbox.deliver_one() is None  # "two" may not overtake "one"
    channel.fail.clear()
    async with sessions() as s, s.begin():
        row = await s.get(OutboundMessage, one.id)
        assert row is not None
        row.next_attempt_at = None  # time passes
    assert await outbox.deliver(limit=10) == 2
    assert [text for _, text, _ in channel.sent] == ["one", "two"]


async def test_no_lease_for_a_channel_without_a_sender(sessions) -> None:
    outbox = Outbox(sessions, {"x": Paced()})
    async with sessions() as s, s.begin():
        web = Contact(channel="webchat", channel_user_id="w")
        s.add(web)
        await s.flush()
        assert await outbox.queue(s, web, _replies(web, "hi")) is None
    rows = await _rows(sessions, web)
    assert [r.text for r in rows] == ["hi"]  # queued all the same


async def test_direct_deliveries_are_bounded(database) -> None:
    """Sends in flight stay bounded (they may be repeated if the app dies): beyond DIRECT
    leases under way, replies go to the workers."""
    blocked = asyncio.Event()

    class Stuck(Paced):
        async def send(self, message: Outgoing) -> str | None:
            await blocked.wait()
            return await super().send(message)

    stuck = Stuck()
    sessions = create_sessionmaker(database.engine)  # committed: deliveries run at once
    outbox = Outbox(sessions, {"bounded": stuck})
    leases, ids = [], []
    try:
        for i in range(DIRECT + 1):
            async with sessions() as s, s.begin():
                contact = Contact(channel="bounded", channel_user_id=f"chat-{i}")
                s.add(contact)
                await s.flush()
                ids.append(contact.id)
                leases.append(await outbox.queue(s, contact, _replies(contact, f"m{i}")))
            if leases[-1] is not None:
                outbox.start(leases[-1])
        assert leases[-1] is None  # DIRECT deliveries under way: the workers take this one
        blocked.set()
        await asyncio.wait_for(outbox.drain(), 10)
        assert len(stuck.sent) == DIRECT
        assert await outbox.deliver(limit=10) == 1
        expected = sorted(f"m{i}" for i in range(DIRECT + 1))
        assert sorted(text for _, text, _ in stuck.sent) == expected
    finally:
        async with sessions() as s, s.begin():
            await s.execute(delete(Contact).where(Contact.id.in_(ids)))
