"""The outbox: delivers stored replies on their channel, with retries and backoff.

Replies are written to the database first (by the relay, the console or the actions);
this worker claims them with row locks, sends them through the channel's sender and
marks them sent, so a crash or a restart never loses a reply, and a reply is marked
sent only after the channel accepted it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from sqlalchemy import exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from bot.metrics import Metrics
from pmi.db import utcnow
from pmi.models import Contact, OutboundMessage, OutboundStatus

logger = logging.getLogger(__name__)
BATCH = 50
MAX_ATTEMPTS = 8
BACKOFF_SECONDS = (1, 2, 5, 15, 60, 300, 900)


@dataclass(frozen=True)
class Outgoing:
    chat_id: str
    text: str
    buttons: list[dict[str, str]]


class RetryLater(Exception):
    """The channel asked to wait (rate limit, server error): keep the message pending."""

    def __init__(self, seconds: float, reason: str) -> None:
        super().__init__(reason)
        self.seconds = seconds


class Rejected(Exception):
    """The channel refused this message for good (blocked bot, unknown chat)."""


class Sender(Protocol):
    async def send(self, message: Outgoing) -> None: ...


class Outbox:
    """Background delivery of pending replies for the channels that have a sender."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        senders: dict[str, Sender],
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics or Metrics()
        self._sessions = sessions
        self._senders = senders
        self._wake = asyncio.Event()

    def notify(self) -> None:
        """Something was queued: deliver now instead of at the next tick."""
        self._wake.set()

    async def _claim(self, s: AsyncSession) -> tuple[OutboundMessage, Contact] | None:
        """The oldest due message whose contact has no earlier message still pending."""
        earlier = aliased(OutboundMessage)
        row = (
            await s.execute(
                select(OutboundMessage, Contact)
                .join(Contact, Contact.id == OutboundMessage.contact_id)
                .where(
                    OutboundMessage.status == OutboundStatus.PENDING,
                    Contact.channel.in_(list(self._senders)),
                    or_(
                        OutboundMessage.next_attempt_at.is_(None),
                        OutboundMessage.next_attempt_at <= utcnow(),
                    ),
                    ~exists().where(
                        earlier.contact_id == OutboundMessage.contact_id,
                        earlier.status == OutboundStatus.PENDING,
                        earlier.id < OutboundMessage.id,
                    ),
                )
                .order_by(OutboundMessage.id)
                .limit(1)
                .with_for_update(skip_locked=True, of=OutboundMessage)
            )
        ).first()
        return (row[0], row[1]) if row else None

    async def deliver_one(self) -> bool | None:
        """Send one due message in its own transaction: True sent, False not, None none due.

        One transaction per message keeps a crash from re-sending a whole batch.
        """
        async with self._sessions() as s, s.begin():
            claimed = await self._claim(s)
            if claimed is None:
                return None
            message, contact = claimed
            message.attempts += 1
            try:
                await self._senders[contact.channel].send(
                    Outgoing(contact.channel_user_id, message.text, message.buttons or [])
                )
            except RetryLater as exc:
                delay = max(exc.seconds, BACKOFF_SECONDS[min(message.attempts, 7) - 1])
                message.next_attempt_at = utcnow() + timedelta(seconds=delay)
                message.last_error = str(exc)[:255]
                if message.attempts >= MAX_ATTEMPTS:
                    message.status = OutboundStatus.FAILED
                logger.warning("outbound %s delayed %.0fs: %s", message.id, delay, exc)
                return False
            except Rejected as exc:
                message.status, message.last_error = OutboundStatus.FAILED, str(exc)[:255]
                logger.warning("outbound %s rejected: %s", message.id, exc)
                return False
            message.status, message.sent_at = OutboundStatus.SENT, utcnow()
            self._metrics.outbound.labels(contact.channel).inc()
            return True

    async def deliver(self, limit: int = BATCH) -> int:
        """Send up to `limit` due messages; return how many were sent."""
        sent = 0
        for _ in range(limit):
            result = await self.deliver_one()
            if result is None:
                break
            sent += bool(result)
        return sent

    async def run(self, tick: float = 1.0) -> None:
        """Background task: deliver whenever notified, and at least every `tick` seconds."""
        while True:
            self._wake.clear()
            try:
                await self.deliver()
            except Exception:  # keep delivering; the traceback is logged
                logger.exception("outbox delivery failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=tick)
