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
from datetime import timedelta

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.delivery import (
    NotYet,
    Outgoing,
    OutsideWindow,
    Rejected,
    RetryLater,
    Sender,
    cancel_and_wait,
)
from bot.metrics import Metrics
from pmi import outbox as store
from pmi.db import utcnow
from pmi.messages import WINDOW_CLOSED
from pmi.models import Contact, OutboundMessage, OutboundStatus

logger = logging.getLogger(__name__)
BATCH = 50
WORKERS = 4  # concurrent deliverers
DIRECT = 8  # leases delivered at once, beside the workers (see Outbox.queue)
IN_FLIGHT_MAX = WORKERS + DIRECT  # the most sends in flight when the app dies
MAX_ATTEMPTS = 8
BACKOFF_SECONDS = (1, 2, 5, 15, 60, 300, 900)
RECORD_RETRY_SECONDS = (0.5, 1, 2, 4, 8, 15, 30)  # about a minute, well inside the lease
WINDOW_RECHECK = timedelta(hours=6)  # a held reply is also retried when the worker writes


@dataclass(frozen=True)
class Lease:
    """A turn's replies, leased in the transaction that queued them, for immediate delivery.

    `Outbox.queue` makes one; `Outbox.start` sends it at once, without waiting for a
    worker to find the messages. If the process dies first, the lease runs out and a worker
    sends them.
    """

    channel: str
    messages: tuple[tuple[int, Outgoing], ...]  # (outbound id, what to send), in order


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
        self._claim_query = store.claim_query(senders)

    def handles(self, channel: str) -> bool:
        return channel in self._senders

    def notify(self) -> None:
        """Something was queued: wake one idle worker now instead of at the next tick."""
        if self._idle:
            self._idle.pop().set()
        else:
            self._missed = True  # a busy worker looks again before it rests

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
            claimed, more = await store.claim_due(s, self._claim_query)
            if claimed is None:
                return None
            if more:
                self.notify()  # another worker can send the next one meanwhile
            message, contact = claimed
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
        if (
            contact.channel not in self._senders
            or await store.has_pending(s, contact.id)
            or self._busy()
        ):
            s.add_all(messages)
            return None
        await store.lease_new(s, messages)
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
            await store.release(s, message_ids)

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
        """Mark a message sent; False if it was erased meanwhile."""
        if not await store.mark_sent(s, message_id, external_id, attempted):
            return False  # erased meanwhile (the worker deleted their data)
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
                text = outcome.template or store.TEMPLATE
                store.add_template_sent(s, message.contact_id, text, outcome.template_id)
            logger.info("outbound %s held for the 24-hour window", message.id)
            return False
        raise TypeError(f"unexpected outcome {outcome!r}")

    async def _reopened_since_last_inbound(self, s: AsyncSession, contact: Contact) -> bool:
        """Whether a re-opening template already went out since the worker last wrote."""
        if contact.channel not in self._template_channels:
            return False
        return await store.reopened_since(s, contact.id, contact.last_inbound_at)

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
