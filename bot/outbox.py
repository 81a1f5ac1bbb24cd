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
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from bot.metrics import Metrics
from pmi.db import utcnow
from pmi.messages import WINDOW_CLOSED
from pmi.models import Contact, OutboundMessage, OutboundStatus

logger = logging.getLogger(__name__)
BATCH = 50
MAX_ATTEMPTS = 8
BACKOFF_SECONDS = (1, 2, 5, 15, 60, 300, 900)
WINDOW_RECHECK = timedelta(hours=6)  # a held reply is also retried when the worker writes
TEMPLATE = "template"  # kind of the re-opening template message, recorded once sent


@dataclass(frozen=True)
class Outgoing:
    chat_id: str
    text: str
    buttons: list[dict[str, str]]
    parts_sent: int = 0  # parts of a long text the channel accepted in an earlier attempt
    language: str | None = None
    last_inbound_at: datetime | None = None  # for WhatsApp's 24-hour window
    may_reopen: bool = True  # no re-opening template sent since the worker last wrote


class RetryLater(Exception):
    """The channel asked to wait (rate limit, server error): keep the message pending."""

    def __init__(self, seconds: float, reason: str, parts_sent: int | None = None) -> None:
        super().__init__(reason)
        self.seconds = seconds
        self.parts_sent = parts_sent


class Rejected(Exception):
    """The channel refused this message for good (blocked bot, unknown chat)."""


class OutsideWindow(Exception):
    """Free-form messages are not allowed now (WhatsApp: 24 h after the worker's last message).

    The message waits until the worker writes again; `template` names the re-opening
    template message the sender sent instead (its provider id), if any.
    """

    def __init__(self, template_id: str | None = None, template: str | None = None) -> None:
        super().__init__(WINDOW_CLOSED)
        self.template_id = template_id
        self.template = template


class Sender(Protocol):
    async def send(self, message: Outgoing) -> str | None:
        """Deliver the message; return the provider's id of it, if it has one."""
        ...


def split_text(text: str, limit: int) -> list[str]:
    """Split a long reply into parts under a channel's limit, at paragraph or line breaks."""
    parts: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = max(
            rest.rfind("\n\n", 0, limit), rest.rfind("\n", 0, limit), rest.rfind(" ", 0, limit)
        )
        if cut <= 0:
            cut = limit
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    parts.append(rest)
    return [p for p in parts if p]


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
        # Channels whose sender may answer OutsideWindow (a 24-hour customer-service window).
        self._template_channels = {c for c, x in senders.items() if getattr(x, "windowed", False)}
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
            outgoing = Outgoing(
                contact.channel_user_id,
                message.text,
                message.buttons or [],
                parts_sent=message.parts_sent,
                language=contact.language,
                last_inbound_at=contact.last_inbound_at,
                may_reopen=not await self._reopened_since_last_inbound(s, contact),
            )
            try:
                message.external_id = await self._senders[contact.channel].send(outgoing)
            except RetryLater as exc:
                delay = max(exc.seconds, BACKOFF_SECONDS[min(message.attempts, 7) - 1])
                message.next_attempt_at = utcnow() + timedelta(seconds=delay)
                message.last_error = str(exc)[:255]
                if exc.parts_sent is not None:
                    message.parts_sent = exc.parts_sent
                if message.attempts >= MAX_ATTEMPTS:
                    message.status = OutboundStatus.FAILED
                logger.warning("outbound %s delayed %.0fs: %s", message.id, delay, exc)
                return False
            except Rejected as exc:
                message.status, message.last_error = OutboundStatus.FAILED, str(exc)[:255]
                logger.warning("outbound %s rejected: %s", message.id, exc)
                return False
            except OutsideWindow as exc:
                message.attempts -= 1  # waiting for the worker is not a failed attempt
                message.next_attempt_at = utcnow() + WINDOW_RECHECK
                message.last_error = WINDOW_CLOSED
                if exc.template_id:
                    s.add(
                        OutboundMessage(
                            contact_id=contact.id,
                            kind=TEMPLATE,
                            text=exc.template or TEMPLATE,
                            status=OutboundStatus.SENT,
                            sent_at=utcnow(),
                            external_id=exc.template_id,
                        )
                    )
                logger.info("outbound %s held for the 24-hour window", message.id)
                return False
            message.status, message.sent_at = OutboundStatus.SENT, utcnow()
            message.last_error = None
            self._metrics.outbound.labels(contact.channel).inc()
            return True

    async def _reopened_since_last_inbound(self, s: AsyncSession, contact: Contact) -> bool:
        """Whether a re-opening template already went out since the worker last wrote."""
        if contact.channel not in self._template_channels:
            return False
        query = select(OutboundMessage.id).where(
            OutboundMessage.contact_id == contact.id, OutboundMessage.kind == TEMPLATE
        )
        if contact.last_inbound_at is not None:
            query = query.where(OutboundMessage.created_at > contact.last_inbound_at)
        return await s.scalar(query.limit(1)) is not None

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
