"""A message whose turn keeps failing: tried again with backoff, then given to a person.

Rasa answers HTTP 500 when a custom action raised on a message (or Rasa itself failed on
it). Retrying at once would fail the same way and hold every later message of the worker
behind it, so the message waits `backoff[n]` seconds before its next try; after the last,
it is marked failed with what failed, the conversation is handed over to the staff (the
console's handoff list shows it, with the error on the message), and the worker is told
that a person will answer. Her next messages then go to that person.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from pmi import messages
from pmi.db import utcnow
from pmi.models import Contact, InboundMessage, InboundStatus

REPLY = "turn_failed"  # reply key and outbound kind of "a person will answer this message"


def waiting(message: InboundMessage, now: datetime | None = None) -> bool:
    """Whether a failed message is not to be tried again yet (its later ones wait too)."""
    return message.next_attempt_at is not None and message.next_attempt_at > (now or utcnow())


async def note_failure(
    s: AsyncSession,
    inbound_id: int,
    error: str,
    backoff: Sequence[float],
    now: datetime | None = None,
) -> bool:
    """Count a failed turn of a pending message; True if it was just given up."""
    message = await s.get(InboundMessage, inbound_id, with_for_update=True)
    if message is None or message.status != InboundStatus.PENDING:
        return False
    now = now or utcnow()
    message.attempts = (message.attempts or 0) + 1
    message.last_error = error[:255]
    if message.attempts <= len(backoff):
        message.next_attempt_at = now + timedelta(seconds=backoff[message.attempts - 1])
        return False
    message.status = InboundStatus.FAILED
    message.processed_at = now
    message.next_attempt_at = None
    return True


async def hand_over(s: AsyncSession, contact: Contact, inbound_id: int, text: str) -> None:
    """After a given-up message: a person takes the conversation; the worker is told."""
    contact.handoff = True
    await messages.add_outbound(s, contact.id, text, kind=REPLY, inbound_id=inbound_id)
