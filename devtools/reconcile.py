"""What the database stored for a run's Telegram chats, and the reconciliation of what
reached the fake Bot API against it: lost, duplicated and out-of-order replies.

Every delivered Telegram message is matched to the stored outbound row it came from (by
chat and text, in order), and that row names the inbound message, hence the update, it
answers. The scale and fault suites count from the same rows (tests/scaled.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from devtools.load import Delivered, Turn


@dataclass
class Stored:
    """The rows of a set of Telegram chats: their contacts, inbound and outbound messages."""

    contacts: Sequence[Any]  # id, channel_user_id, public_id
    inbound: Sequence[Any]  # id, contact_id, external_id, status, channel
    outbound: Sequence[Any]  # contact_id, inbound_id, text, status; in the order stored

    def telegram_updates(self) -> dict[int, int]:
        """Inbound message id -> the Telegram update id it was stored from."""
        return {m.id: int(m.external_id) for m in self.inbound if m.channel == "telegram"}

    def expected(self) -> dict[str, list[tuple[str, int | None]]]:
        """Per chat, the deliveries its stored replies make, in order: (part, update answered)."""
        from bot.telegram import MAX_MESSAGE, split_text

        chat_of = {c.id: c.channel_user_id for c in self.contacts}
        update_of = self.telegram_updates()
        found: dict[str, list[tuple[str, int | None]]] = defaultdict(list)
        for row in self.outbound:
            update_id = update_of.get(row.inbound_id) if row.inbound_id is not None else None
            for part in split_text(row.text, MAX_MESSAGE):
                found[chat_of[row.contact_id]].append((part, update_id))
        return found


async def stored_for(database_url: str, chats: Iterable[str]) -> Stored:
    """The rows the app stored for these Telegram chat ids."""
    from sqlalchemy import select

    from pmi.db import create_engine
    from pmi.models import Contact, InboundMessage, OutboundMessage

    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            contacts = (
                await conn.execute(
                    select(Contact.id, Contact.channel_user_id, Contact.public_id).where(
                        Contact.channel == "telegram", Contact.channel_user_id.in_(list(chats))
                    )
                )
            ).all()
            ids = [c.id for c in contacts]
            inbound = (
                await conn.execute(
                    select(
                        InboundMessage.id,
                        InboundMessage.contact_id,
                        InboundMessage.external_id,
                        InboundMessage.status,
                        InboundMessage.channel,
                    ).where(InboundMessage.contact_id.in_(ids))
                )
            ).all()
            outbound = (
                await conn.execute(
                    select(
                        OutboundMessage.contact_id,
                        OutboundMessage.inbound_id,
                        OutboundMessage.text,
                        OutboundMessage.status,
                    )
                    .where(OutboundMessage.contact_id.in_(ids))
                    .order_by(OutboundMessage.id)
                )
            ).all()
    finally:
        await engine.dispose()
    return Stored(contacts, inbound, outbound)


@dataclass
class Tally:
    """What reached the workers, checked against what the app stored."""

    messages: int = 0  # worker messages (updates) sent
    answered: int = 0  # ... that got at least one reply delivered
    lost: int = 0  # ... that got none (not stored, not answered, or never delivered)
    not_accepted: int = 0  # updates no webhook accepted in time
    not_stored: int = 0  # updates accepted but not in the inbox
    replies_stored: int = 0  # outbound messages (parts) stored for these chats
    replies_delivered: int = 0  # messages the fake Bot API received for these chats
    undelivered: int = 0  # stored replies never delivered
    duplicated: int = 0  # deliveries beyond the stored replies (a reply sent twice)
    out_of_order: int = 0  # deliveries that came after a later reply of the same chat
    unmatched: int = 0  # deliveries matching no stored reply

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def _match_chat(
    tally: Tally,
    items: list[Delivered],
    want: list[tuple[str, int | None]],
    by_update: dict[int, Turn],
) -> None:
    """Match one chat's deliveries, in arrival order, to its expected ones."""
    items.sort(key=lambda d: d.at)
    used = [False] * len(want)
    highest = -1
    for d in items:
        tally.replies_delivered += 1
        index = next(
            (i for i, (text, _) in enumerate(want) if not used[i] and text == d.text), None
        )
        if index is None:
            if any(text == d.text for text, _ in want):
                tally.duplicated += 1
            else:
                tally.unmatched += 1
            continue
        used[index] = True
        if index < highest:
            tally.out_of_order += 1
        highest = max(highest, index)
        update_id = want[index][1]
        if update_id in by_update:
            by_update[update_id].replies.append(d.at)
    tally.undelivered += used.count(False)


async def reconcile(
    database_url: str, turns: Sequence[Turn], received: Iterable[Delivered]
) -> Tally:
    """Match every delivered message to its stored reply; count lost, duplicated, out of order.

    Fills in each turn's `replies` (arrival times of the replies that answer its update).
    """
    chats = {str(t.chat_id) for t in turns}
    by_update = {t.update_id: t for t in turns}
    stored = await stored_for(database_url, chats)
    expected = {int(chat): want for chat, want in stored.expected().items()}
    tally = Tally(messages=len(turns))
    tally.replies_stored = sum(len(v) for v in expected.values())
    stored_updates = set(stored.telegram_updates().values())
    delivered: dict[int, list[Delivered]] = defaultdict(list)
    for d in received:
        if str(d.chat_id) in chats:
            delivered[d.chat_id].append(d)
    for turn in turns:
        turn.replies = []
    for chat_id, items in delivered.items():
        _match_chat(tally, items, expected.get(chat_id, []), by_update)
    for chat_id, want in expected.items():
        if chat_id not in delivered:
            tally.undelivered += len(want)
    for turn in turns:
        if turn.accepted_at is None:
            tally.not_accepted += 1
        elif turn.update_id not in stored_updates:
            tally.not_stored += 1
        if turn.replies:
            tally.answered += 1
    tally.lost = tally.messages - tally.answered
    return tally
