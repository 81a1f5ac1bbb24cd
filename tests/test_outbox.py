"""The outbox's bookkeeping with a stand-in channel (the real channels have their own tests)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.outbox import MAX_ATTEMPTS, Outbox, Outgoing
from pmi.db import utcnow
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
