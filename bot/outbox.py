"""The outbox: delivers stored replies on their channel, with retries and backoff.

Replies are written to the database first (by the relay, the console or the actions);
this worker claims them with row locks, sends them through the channel's sender and
marks them sent, so a crash or a restart never loses a reply, and a reply is marked
sent only after the channel accepted it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import Select, bindparam, exists, or_, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from bot.metrics import Metrics
from pmi.db import utcnow
from pmi.messages import ERASURE_DONE, WINDOW_CLOSED, finish_erasure
from pmi.models import Contact, OutboundMessage, OutboundStatus

logger = logging.getLogger(__name__)
BATCH = 50
WORKERS = 4  # concurrent deliverers
DIRECT = 8  # leases delivered at once, beside the workers (see Outbox.queue)
IN_FLIGHT_MAX = WORKERS + DIRECT  # the most sends in flight when the app dies
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


@dataclass(frozen=True)
class Lease:
    """A turn's replies, leased in the transaction that queued them, for immediate delivery.

    `Outbox.queue` makes one; `Outbox.start` sends it at once, without waiting for a
    worker to find the messages. If the process dies first, the lease runs out and a worker
    sends them.
    """

    channel: str
    messages: tuple[tuple[int, Outgoing], ...]  # (outbound id, what to send), in order


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


STOP_SECONDS = 5  # how long a stop waits for cancelled tasks to unwind


async def cancel_and_wait(tasks: set[asyncio.Task[None]]) -> None:
    """Cancel tasks and wait (up to STOP_SECONDS) until they have unwound."""
    pending = [t for t in tasks if not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=STOP_SECONDS)


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
        self._idle: list[asyncio.Event] = []  # workers waiting for work
        self._missed = False  # notified while no worker was idle
        self._direct: set[asyncio.Task[None]] = set()  # deliveries of leases
        self._claim_query = self._build_claim_query()

    def handles(self, channel: str) -> bool:
        return channel in self._senders

    def notify(self) -> None:
        """Something was queued: wake one idle worker now instead of at the next tick."""
        if self._idle:
            self._idle.pop().set()
        else:
            self._missed = True  # a busy worker looks again before it rests

    def _build_claim_query(self) -> Select[tuple[OutboundMessage, Contact]]:
        """The oldest due message whose contact has no earlier message still pending.

        Built once: composing the aliased query costs more CPU than running it. Two rows
        are locked, so that a worker that finds more than one due wakes another.
        """
        earlier = aliased(OutboundMessage)
        return (
            select(OutboundMessage, Contact)
            .join(Contact, Contact.id == OutboundMessage.contact_id)
            .where(
                OutboundMessage.status == OutboundStatus.PENDING,
                Contact.channel.in_(list(self._senders)),
                or_(
                    OutboundMessage.next_attempt_at.is_(None),
                    OutboundMessage.next_attempt_at <= bindparam("now"),
                ),
                ~exists().where(
                    earlier.contact_id == OutboundMessage.contact_id,
                    earlier.status == OutboundStatus.PENDING,
                    earlier.id < OutboundMessage.id,
                ),
            )
            .order_by(OutboundMessage.id)
            .limit(2)
            .with_for_update(skip_locked=True, of=OutboundMessage)
        )

    async def _claim(self, s: AsyncSession) -> tuple[OutboundMessage, Contact] | None:
        rows = (await s.execute(self._claim_query, {"now": utcnow()})).all()
        if not rows:
            return None
        if len(rows) > 1:
            self.notify()  # more is due: another worker can send it meanwhile
        return rows[0][0], rows[0][1]

    @staticmethod
    def _outgoing(message: OutboundMessage, contact: Contact, may_reopen: bool) -> Outgoing:
        return Outgoing(
            contact.channel_user_id,
            message.text,
            message.buttons or [],
            parts_sent=message.parts_sent or 0,
            language=contact.language,
            last_inbound_at=contact.last_inbound_at,
            may_reopen=may_reopen,
        )

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
            may_reopen = not await self._reopened_since_last_inbound(s, contact)
            outgoing = self._outgoing(message, contact, may_reopen)
        outcome = await self._send(message_id, channel, outgoing)
        return await self._note(message_id, channel, outcome)

    async def queue(
        self, s: AsyncSession, contact: Contact, messages: Sequence[OutboundMessage]
    ) -> Lease | None:
        """Add a turn's replies (new, in order) to `s`, leased for `start` if possible.

        The lease lets the caller send them right after its commit. None (the workers send
        them) if the channel has no sender here or the contact has an earlier message still
        pending: replies never overtake one another.
        """
        if not messages:
            return None
        earlier = None
        if contact.channel in self._senders:
            earlier = await s.scalar(
                select(OutboundMessage.id)
                .where(
                    OutboundMessage.contact_id == contact.id,
                    OutboundMessage.status == OutboundStatus.PENDING,
                )
                .limit(1)
            )
        if contact.channel not in self._senders or earlier is not None or self._busy():
            s.add_all(messages)
            return None
        until = utcnow() + LEASE
        for message in messages:
            message.next_attempt_at = until
        s.add_all(messages)
        await s.flush()
        may_reopen = not await self._reopened_since_last_inbound(s, contact)
        leased = tuple((m.id, self._outgoing(m, contact, may_reopen)) for m in messages)
        return Lease(contact.channel, leased)

    async def drain(self) -> None:
        """Wait for the direct deliveries under way to end."""
        if self._direct:
            await asyncio.wait(set(self._direct))

    def _busy(self) -> bool:
        return len(self._direct) >= DIRECT

    def start(self, lease: Lease) -> None:
        """Send a lease's messages now, in order, in a task of their own.

        With DIRECT deliveries under way already, the lease is handed back to the workers
        instead, so that sends in flight stay bounded.
        """
        work = self._release_lease(lease) if self._busy() else self._deliver_lease(lease)
        task = asyncio.create_task(work, name="outbox-direct")
        self._direct.add(task)
        task.add_done_callback(self._direct.discard)

    async def _deliver_lease(self, lease: Lease) -> None:
        try:
            for index, (message_id, outgoing) in enumerate(lease.messages):
                while True:
                    outcome = await self._send(message_id, lease.channel, outgoing)
                    if not isinstance(outcome, NotYet):
                        break
                    await asyncio.sleep(outcome.seconds)  # this task serves one chat only
                if not await self._note(message_id, lease.channel, outcome, attempted=True):
                    # Not sent (a retry is scheduled, or it failed): the rest waits behind
                    # it for the workers, in order, as if it had been queued normally.
                    await self._release([m for m, _ in lease.messages[index + 1 :]])
                    break
        except Exception:  # the lease runs out and a worker sends what is left
            logger.exception("direct delivery of %s failed", [m for m, _ in lease.messages])
        finally:
            self.notify()  # the contact's later messages may be waiting behind the lease

    async def _release_lease(self, lease: Lease) -> None:
        try:
            await self._release([m for m, _ in lease.messages])
        finally:
            self.notify()

    async def _release(self, message_ids: list[int]) -> None:
        if not message_ids:
            return
        async with self._sessions() as s, s.begin():
            await s.execute(
                update(OutboundMessage)
                .where(
                    OutboundMessage.id.in_(message_ids),
                    OutboundMessage.status == OutboundStatus.PENDING,
                )
                .values(next_attempt_at=None)
            )

    async def _send(
        self, message_id: int, channel: str, outgoing: Outgoing
    ) -> str | Exception | None:
        """What the channel said: the provider's id (sent), or the exception it raised."""
        try:
            return await self._senders[channel].send(outgoing)
        except (RetryLater, Rejected, OutsideWindow, NotYet) as exc:
            return exc
        except Exception as exc:  # a sender bug must not wedge the chat: count it, retry later
            logger.exception(
                "outbound %s: unexpected error from the %s sender", message_id, channel
            )
            return RetryLater(30, f"unexpected error: {exc.__class__.__name__}")

    async def _note(
        self,
        message_id: int,
        channel: str,
        outcome: str | Exception | None,
        *,
        attempted: bool = False,
    ) -> bool:
        """Record the outcome; True if sent. `attempted`: count the attempt now (a lease)."""
        for pause in RECORD_RETRY_SECONDS:
            try:
                async with self._sessions() as s, s.begin():
                    if not isinstance(outcome, Exception):
                        return await self._record_sent(s, message_id, channel, outcome, attempted)
                    message = await s.get(OutboundMessage, message_id)
                    if message is None:
                        return False  # erased meanwhile (the worker deleted their data)
                    message.attempts += attempted
                    return self._record(s, message, channel, outcome)
            except (DBAPIError, OSError) as exc:
                # The message went out but the database is away: keep trying to note it, or
                # the lease runs out and the worker gets it twice.
                logger.warning("outbound %s: cannot record the outcome yet: %s", message_id, exc)
                await asyncio.sleep(pause)
        raise RuntimeError(f"outbound {message_id}: the database stayed away; it may be re-sent")

    async def _record_sent(
        self,
        s: AsyncSession,
        message_id: int,
        channel: str,
        external_id: str | None,
        attempted: bool,
    ) -> bool:
        """Mark a message sent in one statement (the common case: nothing to load).

        The delivered confirmation of an erasure also deletes its contact row.
        """
        row = (
            await s.execute(
                update(OutboundMessage)
                .where(OutboundMessage.id == message_id)
                .values(
                    status=OutboundStatus.SENT,
                    sent_at=utcnow(),
                    next_attempt_at=None,
                    last_error=None,
                    external_id=external_id,
                    attempts=OutboundMessage.attempts + int(attempted),
                )
                .returning(OutboundMessage.kind, OutboundMessage.contact_id)
            )
        ).first()
        if row is None:
            return False  # erased meanwhile (the worker deleted their data)
        if row.kind == ERASURE_DONE:
            await finish_erasure(s, row.contact_id)
        self._metrics.outbound.labels(channel).inc()
        return True

    def _record(
        self,
        s: AsyncSession,
        message: OutboundMessage,
        channel: str,
        outcome: Exception,
    ) -> bool:
        """Write why a message was not sent (yet); always False."""
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
        raise TypeError(f"unexpected outcome {outcome!r}")

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

    async def _worker(self) -> None:
        """Deliver until nothing is due, then rest until notified."""
        wake = asyncio.Event()
        while True:
            self._missed = False
            try:
                while await self.deliver_one() is not None:
                    pass
            except Exception:  # keep delivering; the traceback is logged
                logger.exception("outbox delivery failed")
                await asyncio.sleep(1)
            if self._missed:
                continue  # something was queued while this worker was busy
            wake.clear()
            self._idle.append(wake)
            try:
                await wake.wait()
            finally:
                if wake in self._idle:
                    self._idle.remove(wake)

    async def _ticker(self, tick: float) -> None:
        while True:
            await asyncio.sleep(tick)
            self.notify()  # retries and paced messages whose time has come

    async def run(self, tick: float = 1.0) -> None:
        """Background task: `workers` deliverers, woken one at a time when notified.

        Several run at once so that one slow chat or API call does not hold up the others:
        a worker that finds more than one message due wakes another. Claims never overlap
        (row locks and leases), and a contact's messages stay in order. Every `tick` s an
        idle worker also looks for retries and paced messages whose time has come.
        """
        try:
            await asyncio.gather(
                self._ticker(tick), *(self._worker() for _ in range(self._workers))
            )
        finally:
            # Their leases run out and a worker sends what is left. Waited for, so that none
            # is still inside a database call when the engine is disposed.
            await cancel_and_wait(self._direct)
