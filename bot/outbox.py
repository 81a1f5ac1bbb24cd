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
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from bot.metrics import Metrics
from pmi.db import utcnow
from pmi.messages import WINDOW_CLOSED
from pmi.models import Contact, OutboundMessage, OutboundStatus

logger = logging.getLogger(__name__)
BATCH = 50
WORKERS = 4  # concurrent deliverers: also the most sends in flight when the app dies
MAX_ATTEMPTS = 8
BACKOFF_SECONDS = (1, 2, 5, 15, 60, 300, 900)
RECORD_RETRY_SECONDS = (0.5, 1, 2, 4, 8, 15, 30)  # about a minute, well inside the lease
LEASE = timedelta(seconds=120)  # a claimed message is not due again while it is being sent
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


class NotYet(Exception):
    """The channel's pace says wait (e.g. one message per second per chat): not a failure."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"paced for {seconds:.2f}s")
        self.seconds = seconds


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
        workers: int = WORKERS,
    ) -> None:
        self._metrics = metrics or Metrics()
        self._sessions = sessions
        self._senders = senders
        self._workers = workers
        # Channels whose sender may answer OutsideWindow (a 24-hour customer-service window).
        self._template_channels = {c for c, x in senders.items() if getattr(x, "windowed", False)}
        self._wakes: list[asyncio.Event] = []

    def notify(self) -> None:
        """Something was queued: deliver now instead of at the next tick."""
        for wake in self._wakes:
            wake.set()

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
        """Send one due message: True sent, False not (yet), None when nothing is due.

        The message is leased in a short transaction (due again only after LEASE, which
        also holds back the contact's later messages), sent with no transaction open, and
        the outcome recorded in a second one. A crash while sending re-sends that one
        message when the lease runs out; database locks are never held over the network.
        """
        async with self._sessions() as s, s.begin():
            claimed = await self._claim(s)
            if claimed is None:
                return None
            message, contact = claimed
            message.attempts += 1
            message.next_attempt_at = utcnow() + LEASE
            message_id, channel = message.id, contact.channel
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
            outcome: str | Exception | None = await self._senders[channel].send(outgoing)
        except (RetryLater, Rejected, OutsideWindow, NotYet) as exc:
            outcome = exc
        except Exception as exc:  # a sender bug must not wedge the chat: count it, retry later
            logger.exception(
                "outbound %s: unexpected error from the %s sender", message_id, channel
            )
            outcome = RetryLater(30, f"unexpected error: {exc.__class__.__name__}")
        for pause in RECORD_RETRY_SECONDS:
            try:
                async with self._sessions() as s, s.begin():
                    message = await s.get(OutboundMessage, message_id)
                    if message is None:
                        return False  # erased meanwhile (the worker deleted their data)
                    return self._record(s, message, channel, outcome)
            except (DBAPIError, OSError) as exc:
                # The message went out but the database is away: keep trying to note it, or
                # the lease runs out and the worker gets it twice.
                logger.warning("outbound %s: cannot record the outcome yet: %s", message_id, exc)
                await asyncio.sleep(pause)
        raise RuntimeError(f"outbound {message_id}: the database stayed away; it may be re-sent")

    def _record(
        self,
        s: AsyncSession,
        message: OutboundMessage,
        channel: str,
        outcome: str | Exception | None,
    ) -> bool:
        """Write what the channel said about one message; True if it was sent."""
        if isinstance(outcome, NotYet):
            message.attempts -= 1  # pacing, not a failure
            message.next_attempt_at = utcnow() + timedelta(seconds=outcome.seconds)
            asyncio.get_running_loop().call_later(outcome.seconds + 0.01, self.notify)
            return False
        if isinstance(outcome, RetryLater):
            delay = max(outcome.seconds, BACKOFF_SECONDS[min(message.attempts, 7) - 1])
            message.next_attempt_at = utcnow() + timedelta(seconds=delay)
            message.last_error = str(outcome)[:255]
            if outcome.parts_sent is not None:
                message.parts_sent = outcome.parts_sent
            if message.attempts >= MAX_ATTEMPTS:
                message.status = OutboundStatus.FAILED
            logger.warning("outbound %s delayed %.0fs: %s", message.id, delay, outcome)
            return False
        if isinstance(outcome, Rejected):
            message.status, message.last_error = OutboundStatus.FAILED, str(outcome)[:255]
            logger.warning("outbound %s rejected: %s", message.id, outcome)
            return False
        if isinstance(outcome, OutsideWindow):
            message.attempts -= 1  # waiting for the worker is not a failed attempt
            message.next_attempt_at = utcnow() + WINDOW_RECHECK
            message.last_error = WINDOW_CLOSED
            if outcome.template_id:
                s.add(
                    OutboundMessage(
                        contact_id=message.contact_id,
                        kind=TEMPLATE,
                        text=outcome.template or TEMPLATE,
                        status=OutboundStatus.SENT,
                        sent_at=utcnow(),
                        external_id=outcome.template_id,
                    )
                )
            logger.info("outbound %s held for the 24-hour window", message.id)
            return False
        message.status, message.sent_at = OutboundStatus.SENT, utcnow()
        message.next_attempt_at, message.last_error = None, None
        message.external_id = outcome if isinstance(outcome, str) else None
        self._metrics.outbound.labels(channel).inc()
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
        """Send up to `limit` due messages one after another; return how many were sent."""
        sent = 0
        for _ in range(limit):
            result = await self.deliver_one()
            if result is None:
                break
            sent += bool(result)
        return sent

    async def _worker(self, wake: asyncio.Event, tick: float) -> None:
        while True:
            wake.clear()
            try:
                while await self.deliver_one() is not None:
                    pass
            except Exception:  # keep delivering; the traceback is logged
                logger.exception("outbox delivery failed")
                await asyncio.sleep(1)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=tick)

    async def run(self, tick: float = 1.0) -> None:
        """Background task: `workers` deliverers, woken when notified and every `tick` s.

        Several run at once so that one slow chat or API call does not hold up the others;
        claims never overlap (row locks and leases), and a contact's messages stay in order.
        """
        wakes = [asyncio.Event() for _ in range(self._workers)]
        self._wakes = wakes
        await asyncio.gather(*(self._worker(wake, tick) for wake in wakes))
