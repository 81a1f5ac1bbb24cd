"""Per-contact rate limit on inbound messages, so one flooding account cannot starve others.

Nothing a worker sends is dropped: every message is stored first, as always. The limit only
decides whether the relay processes the contact's pending messages now or leaves them for
later: a contact that sent more than `max_messages` in the last `window_seconds` is skipped
(their messages stay pending; the relay's retry loop takes them, in order, once the window
has slid past the burst), and gets at most one "slow down" notice per `notice_minutes`.

The count comes from the stored messages themselves (`inbound_messages`), so the limit holds
across app processes and restarts without any other state; the "slow down" notices are
outbox rows of their own kind, which also makes "at most one" hold across processes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from pmi import messages
from pmi.db import utcnow
from pmi.knowledge import Replies
from pmi.models import Contact, InboundMessage, OutboundMessage
from pmi.settings import RateLimitSettings

logger = logging.getLogger(__name__)

NOTICE = "slow_down"  # reply key in data/replies.yml and outbox kind


class CaseLimits(Protocol):
    """Caps the urgent cases some contacts may open (the web chat's, per client address).

    The relay asks `reached` before a turn (then Rasa gets `case_limit_reached` and the
    actions open no case) and reports each turn it ran, uncapped, with `count`.
    """

    def reached(self, contact_id: int) -> bool: ...

    def count(self, contact_id: int, intent: str | None) -> None: ...


@dataclass(frozen=True)
class Decision:
    allowed: bool
    recent: int  # messages of the contact within the window
    notified: bool = False  # a "slow down" notice was queued now


class RateLimiter:
    """`await limiter.admit(contact_id)`: process this contact now (True) or later (False)."""

    def __init__(
        self,
        settings: RateLimitSettings,
        sessions: async_sessionmaker[AsyncSession],
        replies: Replies,
        default_language: str = "id",
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._replies = replies
        self._default_language = default_language

    async def admit(self, contact_id: int) -> bool:
        return (await self.check(contact_id)).allowed

    def window_start(self) -> datetime:
        """Messages received since then count against the limit."""
        return utcnow() - timedelta(seconds=self._settings.window_seconds)

    async def admit_counted(self, s: AsyncSession, contact_id: int, recent: int) -> bool:
        """`admit` with the count already read in the caller's transaction (the relay reads
        it with the message: no query or transaction of its own)."""
        return (await self._decide(s, contact_id, recent)).allowed

    async def check(self, contact_id: int) -> Decision:
        """Count the contact's recent messages; over the limit, queue the notice if it is due."""
        async with self._sessions() as s, s.begin():
            recent = await s.scalar(
                select(func.count(InboundMessage.id)).where(
                    InboundMessage.contact_id == contact_id,
                    InboundMessage.received_at >= self.window_start(),
                )
            )
            return await self._decide(s, contact_id, recent or 0)

    async def _decide(self, s: AsyncSession, contact_id: int, recent: int) -> Decision:
        if recent <= self._settings.max_messages:
            return Decision(True, recent)
        since = utcnow() - timedelta(minutes=self._settings.notice_minutes)
        notified = await self._notify(s, contact_id, since)
        logger.info(
            "contact_id=%s over the rate limit: %s messages in the window", contact_id, recent
        )
        return Decision(False, recent, notified)

    async def _notify(self, s: AsyncSession, contact_id: int, since: datetime) -> bool:
        last = await s.scalar(
            select(func.max(OutboundMessage.created_at)).where(
                OutboundMessage.contact_id == contact_id,
                OutboundMessage.kind == NOTICE,
                OutboundMessage.created_at >= since,
            )
        )
        if last is not None:
            return False
        contact = await s.get(Contact, contact_id)
        if contact is None:
            return False
        text = self._replies.get(NOTICE, contact.language or self._default_language)
        await messages.add_outbound(s, contact_id, text, kind=NOTICE)
        return True
