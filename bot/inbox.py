"""The one way in: every adapter hands each worker message to `Inbox.accept`.

A message is stored first (unique on channel and provider id: a duplicate stops there),
so the adapter may acknowledge it to the provider as soon as `accept` returns; it is then
processed in the background, one contact at a time and in order, by the relay (or at
once, for the web chat, which answers in the same request).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.delivery import cancel_and_wait
from bot.metrics import Metrics
from bot.relay import Relay
from bot.sanitize import clean_text
from pmi import media as media_records
from pmi import messages
from pmi.media import MediaRef


@dataclass(frozen=True)
class Incoming:
    """One message as an adapter read it from its provider."""

    channel: str
    channel_user_id: str
    external_id: str  # the provider's id of the message: duplicates share it
    text: str
    media: MediaRef | None = None
    hint: str | None = None  # the channel's idea of the language (Telegram's language_code)


@dataclass(frozen=True)
class Received:
    """What the adapter gets back once the message is stored."""

    contact_id: int
    inbound_id: int | None  # None: a duplicate, stored earlier


class Inbox:
    """Stores each message, then has the relay process its contact's pending messages."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        relay: Relay,
        metrics: Metrics | None = None,
        on_media: Callable[[], None] | None = None,
    ) -> None:
        """`on_media`: wakes the file fetcher when a message carries a file."""
        self._sessions = sessions
        self._relay = relay
        self._metrics = metrics or Metrics()
        self._on_media = on_media
        self._tasks: set[asyncio.Task[bool]] = set()

    async def accept(
        self,
        incoming: Incoming,
        *,
        answer_now: bool = False,
        before_turn: Callable[[int], None] | None = None,
    ) -> Received:
        """Store the message and schedule its contact; `answer_now` processes it before
        returning. `before_turn` learns the contact first (the web chat's case limits)."""
        received = await self.store(incoming)
        if before_turn is not None:
            before_turn(received.contact_id)
        if received.inbound_id is None:
            return received
        if incoming.media is not None and self._on_media is not None:
            self._on_media()  # download it now rather than at the fetcher's next tick
        work = self._relay.process(received.contact_id, hint=incoming.hint)
        if answer_now:
            await work
        else:
            task = asyncio.create_task(work, name="relay-process")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return received

    async def store(self, incoming: Incoming) -> Received:
        """Store one message (and the file it carries, to be fetched in the background)."""
        # No NUL, lone surrogates or control characters in the database (PostgreSQL refuses
        # NUL; no driver encodes a lone surrogate), whatever an adapter let through.
        text, user = clean_text(incoming.text), clean_text(incoming.channel_user_id)
        external_id, channel = clean_text(incoming.external_id), incoming.channel
        async with self._sessions() as s, s.begin():
            contact = await messages.get_or_create_contact(s, channel, user)
            stored = await messages.store_inbound(s, contact, channel, external_id, text)
            if stored is not None and incoming.media is not None:
                await media_records.record(s, contact.id, stored.id, incoming.media)
        if stored is not None:
            self._metrics.inbound.labels(channel).inc()
        return Received(contact.id, stored.id if stored else None)

    async def drain(self) -> None:
        """Wait until the processing under way has finished."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def stop(self) -> None:
        """Cancel the processing under way: what it left pending is redone on start."""
        await cancel_and_wait(self._tasks)
