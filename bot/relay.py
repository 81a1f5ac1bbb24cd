"""The path of one stored message: decide the language, ask Rasa, queue the replies.

Messages are stored by the inbox (`bot/inbox.py`) before anything else and processed
here strictly in order per contact: what the app answers itself (commands, files, a
handed-over chat) in `bot/app_steps.py`, a Rasa turn in `bot/turns.py`. When Rasa is
down, the worker gets one holding reply and her messages stay pending until a background
retry finds Rasa back. A message whose own turn fails (an action raises on it) is tried
a few times with backoff, then handed to a person (`pmi.failed_turns`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app_steps import MEDIA_ACK, AppSteps
from bot.language import decide_language
from bot.metrics import Metrics
from bot.outbox import Outbox
from bot.rasa_client import RasaClient, RasaUnavailable, TurnFailed
from bot.turns import Ask, Turns
from pmi import failed_turns, messages
from pmi.contacts import ContactSheet, EmergencyLines
from pmi.danger import Triage
from pmi.db import utcnow
from pmi.knowledge import Replies
from pmi.locks import ContactLocks
from pmi.missions import Missions
from pmi.models import InboundStatus
from pmi.ratelimit import CaseLimits, RateLimiter
from pmi.settings import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Step:
    """What reading the next message led to."""

    stop: bool = False  # nothing (more) to do now
    queued: bool = False  # replies were queued for the outbox workers
    turn: Ask | None = None  # Rasa must answer this
    erased: list[str] | None = None  # the worker's data was erased (her files' storage keys)


class Relay:
    """Drives a contact's stored messages through Rasa, one at a time and in order."""

    def __init__(
        self,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        rasa: RasaClient,
        replies: Replies,
        metrics: Metrics | None = None,
        limiter: RateLimiter | None = None,
        outbox: Outbox | None = None,
        case_limits: CaseLimits | None = None,
        on_erasure: Callable[[list[str]], Awaitable[None]] | None = None,
    ) -> None:
        """`outbox`: where replies go; the relay leases a turn's replies and starts them.

        `on_erasure`: called after a worker's erasure is committed, with her files' storage
        keys (to delete the files, wake the erasure worker, checkpoint SQLite).
        `case_limits`: a contact over it gets `case_limit_reached` in Rasa's metadata.
        """
        self._metrics = metrics or Metrics()
        self._settings = settings
        self._sessions = sessionmaker
        self._limiter = limiter
        self._outbox = outbox
        self._turns = Turns(sessionmaker, rasa, replies, outbox, case_limits)
        self._on_erasure = on_erasure
        self._locks = ContactLocks.for_sessions(sessionmaker)  # across processes on PostgreSQL
        content = settings.content
        self._triage = Triage.load(content.danger_lexicon_file)
        contacts = ContactSheet(
            Missions.load(content.missions_file, content.places_file),
            EmergencyLines.load(content.emergency_lines_file),
            replies,
        )
        self._steps = AppSteps(settings, replies, contacts)

    async def process(self, contact_id: int, *, hint: str | None = None) -> bool:
        """Process a contact's pending messages in order; False if Rasa was unavailable.

        Per message: one read transaction (the message, its contact and file, and the rate
        limit), the Rasa turn with no transaction open, and one write transaction that
        records the turn and leases its replies, which are then sent at once instead of
        waiting for an outbox worker to find them.
        """
        queued = False  # replies queued without a lease: an outbox worker must send them
        try:
            async with self._locks[contact_id]:
                first = True
                while True:
                    async with self._sessions() as s, s.begin():
                        step = await self._next(s, contact_id, hint, first)
                    if step.erased is not None and self._on_erasure is not None:
                        await self._on_erasure(step.erased)
                    first = False
                    queued = queued or step.queued
                    if step.stop:
                        return True
                    if step.turn is None:
                        continue  # handled without Rasa (a command, a file, a handoff)
                    ask = step.turn
                    started = time.monotonic()
                    try:
                        turn = await self._turns.ask(ask)
                    except TurnFailed as exc:
                        # This message breaks its turn: try it later, in the end a person.
                        self._metrics.turns_failed.inc()
                        logger.warning("turn failed for contact_id=%s: %s", contact_id, exc)
                        backoff = self._settings.rasa.failed_turn_backoff_seconds
                        if await self._turns.fail(ask, str(exc), backoff):
                            self._metrics.turns_given_up.inc()
                            queued = True
                            continue  # her next messages go to the person now
                        queued = await self._turns.hold(contact_id, ask.language) or queued
                        return True  # Rasa is up: the other workers go on
                    except RasaUnavailable as exc:
                        self._metrics.rasa_unavailable.inc()
                        logger.warning("rasa unavailable for contact_id=%s: %s", contact_id, exc)
                        queued = await self._turns.hold(contact_id, ask.language) or queued
                        return False
                    recorded = await self._turns.record(ask, turn)
                    self._metrics.turn_seconds.observe(time.monotonic() - started)
                    if recorded.lease is not None and self._outbox is not None:
                        self._outbox.start(recorded.lease)
                    elif recorded.replied:
                        queued = True
                    if not recorded.more:
                        # Anything stored later is processed by the task its webhook started.
                        return True
        finally:
            if queued and self._outbox is not None:
                self._outbox.notify()

    async def _next(self, s: AsyncSession, contact_id: int, hint: str | None, first: bool) -> _Step:
        """Read the contact's next pending message and handle what needs no Rasa."""
        limiter = self._limiter if first else None
        found = await messages.next_pending_with_contact(
            s, contact_id, received_since=limiter.window_start() if limiter else None
        )
        if found is None:
            return _Step(stop=True)
        contact, inbound, media_kind, recent = found
        if failed_turns.waiting(inbound):
            return _Step(stop=True)  # its turn failed: the retry loop tries it when due
        if limiter is not None and not await limiter.admit_counted(s, contact_id, recent):
            # Flooding: the messages stay pending for the retry loop (perhaps a notice).
            return _Step(stop=True, queued=True)
        supported = tuple(self._settings.language.supported)
        current = contact.language or hint or self._settings.language.default
        steps = self._steps
        command = steps.command(contact, inbound.text, current, supported)
        if command is not None:
            erased = await steps.answer_command(s, contact, inbound, command, current)
            return _Step(queued=True, erased=erased)
        queued = False
        if media_kind is not None and not await messages.has_reply(s, inbound.id, MEDIA_ACK):
            # Acknowledge the file once; a caption then goes on like any text.
            await steps.acknowledge_media(s, contact.id, inbound.id, media_kind, current)
            queued = True
            if not inbound.text.strip():
                await messages.mark_inbound_done(s, inbound, current)
                return _Step(queued=True)
        if contact.unsafe_since is not None and steps.is_safe_again(inbound.text):
            await steps.mark_safe(s, contact, inbound, current)
            return _Step(queued=True)
        if contact.handoff:
            # A person has the conversation: the message waits for them, but a word that
            # always opens the emergency path ("darurat") alerts them at once.
            inbound.status = InboundStatus.HANDOFF
            inbound.processed_at = utcnow()
            if self._triage.is_instruction(inbound.text):
                await steps.handoff_emergency(s, contact, inbound, current)
                queued = True
            return _Step(queued=queued)
        language = decide_language(
            inbound.text,
            chosen=contact.language if contact.language_chosen else None,
            sticky=contact.language,
            hint=hint,
            default=self._settings.language.default,
            supported=self._settings.language.supported,
        )
        ask = Ask(contact, inbound.id, contact.public_id, inbound.text, language)
        return _Step(queued=queued, turn=ask)

    async def retry_pending(self) -> None:
        """Process every contact that still has pending messages (after an outage/restart)."""
        async with self._sessions() as s:
            contact_ids = await messages.contacts_with_pending_inbound(s)
        for contact_id in contact_ids:
            if not await self.process(contact_id):
                return  # still down; try again later

    async def run_retry_loop(self) -> None:
        """Background task: retry pending messages every `rasa.retry_seconds`."""
        while True:
            try:
                await self.retry_pending()
            except Exception:  # keep the loop alive; the error is logged with its traceback
                logger.exception("retry of pending messages failed")
            await asyncio.sleep(self._settings.rasa.retry_seconds)
