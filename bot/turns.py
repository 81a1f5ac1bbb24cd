"""One Rasa turn of the relay: the round trip, and the recording of its replies.

The turn is asked with no transaction open; its replies are recorded in one write
transaction (only if the message is still pending: of two processes finishing the same
turn, only the first records it) and leased for immediate sending.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.outbox import Lease, Outbox
from bot.rasa_client import RasaClient, Turn
from pmi import failed_turns, messages
from pmi.knowledge import Replies
from pmi.models import Contact, OutboundMessage
from pmi.ratelimit import CaseLimits

logger = logging.getLogger(__name__)

HOLDING = "holding"  # reply key and outbound kind of "Rasa is away, your message is kept"


@dataclass(frozen=True)
class Ask:
    """A message to put to Rasa."""

    contact: Contact  # as read (detached); the reply's language is set on it
    inbound_id: int
    sender: str
    text: str
    language: str


@dataclass(frozen=True)
class Recorded:
    lease: Lease | None = None
    replied: bool = False
    more: bool = False  # the contact has more pending messages


class Turns:
    """Asks Rasa for a turn and records what it answered."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        rasa: RasaClient,
        replies: Replies,
        outbox: Outbox | None,
        case_limits: CaseLimits | None,
    ) -> None:
        self._sessions = sessions
        self._rasa = rasa
        self._replies = replies
        self._outbox = outbox
        self._case_limits = case_limits

    async def ask(self, ask: Ask) -> Turn:
        """The Rasa round trip (raises RasaUnavailable); a contact over the case limit
        gets `case_limit_reached` in the metadata, so the actions open no case."""
        contact_id = ask.contact.id
        capped = bool(self._case_limits and self._case_limits.reached(contact_id))
        metadata: dict[str, Any] = {"language": ask.language, "channel": ask.contact.channel}
        if capped:
            metadata["case_limit_reached"] = True
        turn = await self._rasa.send(ask.sender, ask.text, ask.inbound_id, metadata)
        if self._case_limits and not capped and not turn.replayed:
            self._case_limits.count(contact_id, turn.intent)
        return turn

    async def record(self, ask: Ask, turn: Turn) -> Recorded:
        """Record a Rasa turn and queue its replies, leased for sending at once if possible.

        Only if the message is still pending (the UPDATE takes its row lock): of two
        processes finishing the same turn, only the first records it.
        """
        contact = ask.contact
        async with self._sessions() as s, s.begin():
            if not await messages.finish_inbound(
                s, ask.inbound_id, ask.language, turn.intent, turn.confidence
            ):
                return Recorded(more=True)  # deleted meanwhile, or another process did it
            more = await messages.has_pending_after(s, contact.id, ask.inbound_id)
            replies = [
                OutboundMessage(
                    contact_id=contact.id,
                    inbound_id=ask.inbound_id,
                    text=reply.text,
                    buttons=reply.buttons,
                )
                for reply in turn.replies
            ]
            if ask.language != contact.language:
                await messages.set_language(s, contact, ask.language)
            if self._outbox is not None:
                lease = await self._outbox.queue(s, contact, replies)
            else:
                lease = None
                s.add_all(replies)
        if turn.replayed:
            logger.info("inbound_id=%s: rasa had already answered it", ask.inbound_id)
        return Recorded(lease, bool(replies), more)

    async def fail(self, ask: Ask, error: str, backoff: tuple[float, ...]) -> bool:
        """Count a failed turn of the message; True if it was given up and handed over."""
        async with self._sessions() as s, s.begin():
            if not await failed_turns.note_failure(s, ask.inbound_id, error, backoff):
                return False
            contact = await s.get(Contact, ask.contact.id)
            if contact is not None:
                text = self._replies.get(failed_turns.REPLY, ask.language)
                await failed_turns.hand_over(s, contact, ask.inbound_id, text)
        logger.error("inbound_id=%s given up after failed turns: %s", ask.inbound_id, error)
        return True

    async def hold(self, contact_id: int, language: str) -> bool:
        """Queue one holding reply per outage, not one per message; True if queued now."""
        async with self._sessions() as s, s.begin():
            if await messages.held_since_last_reply(s, contact_id, HOLDING):
                return False
            await messages.add_outbound(
                s, contact_id, self._replies.get(HOLDING, language), kind=HOLDING
            )
            return True
