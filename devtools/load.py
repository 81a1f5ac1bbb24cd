"""Load through the app's Telegram webhook: scripted worker conversations in a closed loop.

Lost and duplicated replies are counted against the database afterwards, not guessed from
timing (devtools/reconcile.py): every delivered Telegram message is matched to the stored
outbound row it came from, and that row names the inbound message, hence the update, it
answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from devtools.stack import SECRET_HEADER


@dataclass(frozen=True)
class Conversation:
    """A scripted worker conversation: the worker's turns, in order."""

    name: str
    language: str
    turns: tuple[str, ...]


def load_conversations(path: Path) -> list[Conversation]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [
        Conversation(c["name"], c["language"], tuple(str(t) for t in c["turns"]))
        for c in data["conversations"]
    ]


async def closed_loop(
    conversations: Sequence[Conversation],
    concurrency: int,
    play: Callable[[Conversation], Awaitable[None]],
    *,
    stop_at: float | None,
    per_slot: int | None,
) -> None:
    """`concurrency` slots, each playing conversations one after another, like a person.

    Slots start spread over the first second, and each at a different script; a slot stops
    at `stop_at` (time.monotonic()) or after `per_slot` conversations.
    """
    scripts = itertools.cycle(conversations)

    async def slot(index: int) -> None:
        await asyncio.sleep(index / max(concurrency, 1))
        for _ in range(index):
            next(scripts)
        count = 0
        while per_slot is None or count < per_slot:
            if stop_at is not None and time.monotonic() >= stop_at:
                return
            await play(next(scripts))
            count += 1

    await asyncio.gather(*(slot(i) for i in range(concurrency)))


@dataclass
class Turn:
    """One worker message sent as a Telegram update, and the replies that answered it."""

    chat_id: int
    update_id: int
    text: str
    sent_at: float  # time.monotonic() just before the update was posted
    sent_wall: float = field(default_factory=time.time)  # the same instant, wall clock
    accepted_at: float | None = None  # the webhook answered 200
    post_attempts: int = 0
    replies: list[float] = field(default_factory=list)  # arrival times (set by reconcile)

    @property
    def first_reply_seconds(self) -> float | None:
        return min(self.replies) - self.sent_at if self.replies else None

    @property
    def last_reply_seconds(self) -> float | None:
        return max(self.replies) - self.sent_at if self.replies else None


def _fresh_id() -> int:
    """A start for ids that is unique per generator (microseconds since the epoch)."""
    time.sleep(1e-6)
    return time.time_ns() // 1000


@dataclass(frozen=True)
class Delivered:
    """A message the fake Bot API received (a reply sent to a worker)."""

    chat_id: int
    at: float
    text: str


@dataclass
class _Chat:
    received: list[Delivered] = field(default_factory=list)
    event: asyncio.Event = field(default_factory=asyncio.Event)


class TelegramLoad:
    """Drives K concurrent worker conversations through the app's Telegram webhook.

    Each of the K slots plays scripted conversations one after another, each in a new
    chat, like a person: it sends a turn, waits for the first reply, then waits until the
    replies stop (`settle` seconds without a new one, longer than the outbox's one message
    per second per chat) before sending the next turn. Updates go to the webhook URLs in
    turn per chat; if one does not answer 200 the next is tried (as a load balancer would),
    with the same update_id, until `reply_timeout`.
    """

    def __init__(
        self,
        telegram: Any,
        webhook_urls: Sequence[str],
        secret: str,
        http: aiohttp.ClientSession,
        *,
        settle: float = 1.3,
        reply_timeout: float = 60.0,
        first_chat_id: int | None = None,
        first_update_id: int | None = None,
    ) -> None:
        self.webhook_urls = list(webhook_urls)
        self._secret = secret
        self._http = http
        self.settle = settle
        self.reply_timeout = reply_timeout
        # By default ids no earlier run or other generator used on the same database: a
        # reused update id would be taken for a retry (and dropped), a chat id for a contact.
        self._chat_ids = itertools.count(first_chat_id or _fresh_id())
        self._update_ids = itertools.count(first_update_id or _fresh_id())
        self._chats: dict[int, _Chat] = {}
        self.turns: list[Turn] = []
        telegram.on_send.append(self._on_send)

    def _on_send(self, params: dict[str, Any]) -> None:
        chat = self._chats.get(int(params["chat_id"]))
        if chat is not None:
            chat.received.append(
                Delivered(int(params["chat_id"]), time.monotonic(), params["text"])
            )
            chat.event.set()

    @property
    def received(self) -> list[Delivered]:
        return [d for chat in self._chats.values() for d in chat.received]

    async def post(self, update: dict[str, Any], deadline: float) -> tuple[float | None, int]:
        """POST one update, failing over between webhook URLs; (accepted time, attempts)."""
        chat_id = update["message"]["chat"]["id"]
        for attempts in itertools.count(1):
            url = self.webhook_urls[(chat_id + attempts - 1) % len(self.webhook_urls)]
            try:
                async with self._http.post(
                    url, json=update, headers={SECRET_HEADER: self._secret}
                ) as resp:
                    await resp.read()
                    if resp.status == 200:
                        return time.monotonic(), attempts
            except (aiohttp.ClientError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                return None, attempts
            await asyncio.sleep(0.2)
        raise AssertionError("unreachable")

    def new_chat(self) -> int:
        """A new chat id whose replies are recorded."""
        chat_id = next(self._chat_ids)
        self._chats[chat_id] = _Chat()
        return chat_id

    def deliveries(self, chat_id: int) -> list[Delivered]:
        """The messages delivered to one chat so far, in arrival order."""
        return list(self._chats[chat_id].received)

    async def send(self, chat_id: int, text: str, language: str = "id") -> Turn:
        """Post one worker message (no waiting for replies); the Turn records it."""
        update_id = next(self._update_ids)
        user = {"id": chat_id, "is_bot": False, "first_name": "Worker", "language_code": language}
        update = {
            "update_id": update_id,
            "message": {
                "message_id": update_id,
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private"},
                "from": user,
                "text": text,
            },
        }
        turn = Turn(chat_id, update_id, text, time.monotonic())
        self.turns.append(turn)
        deadline = turn.sent_at + self.reply_timeout
        turn.accepted_at, turn.post_attempts = await self.post(update, deadline)
        return turn

    async def turn(self, chat_id: int, text: str, language: str) -> Turn:
        """Send one message and wait for its replies to arrive and stop."""
        chat = self._chats[chat_id]
        seen = len(chat.received)
        turn = await self.send(chat_id, text, language)
        if turn.accepted_at is None:
            return turn
        deadline = turn.sent_at + self.reply_timeout
        # The first reply, then quiet for `settle` seconds.
        while True:
            if len(chat.received) > seen:
                wait = chat.received[-1].at + self.settle - time.monotonic()
            else:
                wait = deadline - time.monotonic()
            if wait <= 0:
                return turn
            chat.event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(chat.event.wait(), timeout=wait)

    async def conversation(self, conversation: Conversation, stop_at: float | None) -> int:
        chat_id = self.new_chat()
        done = 0
        for text in conversation.turns:
            if stop_at is not None and time.monotonic() >= stop_at:
                break
            await self.turn(chat_id, text, conversation.language)
            done += 1
        return done

    async def run(
        self,
        conversations: Sequence[Conversation],
        concurrency: int,
        *,
        duration: float | None = None,
        per_slot: int | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> list[Turn]:
        """Run `concurrency` slots for `duration` seconds or `per_slot` conversations each.

        With a duration, no new turn starts after it (turns under way finish). Returns the
        turns of this run; their reply times are filled in by `reconcile`.
        """
        if duration is None and per_slot is None:
            raise ValueError("give a duration or a number of conversations per slot")
        start = len(self.turns)
        stop_at = time.monotonic() + duration if duration is not None else None

        async def play(conversation: Conversation) -> None:
            await self.conversation(conversation, stop_at)

        reporter = asyncio.create_task(self._report(start, progress)) if progress else None
        try:
            await closed_loop(conversations, concurrency, play, stop_at=stop_at, per_slot=per_slot)
        finally:
            if reporter:
                reporter.cancel()
        return self.turns[start:]

    async def _report(self, start: int, progress: Callable[[str], None]) -> None:
        began = time.monotonic()
        while True:
            await asyncio.sleep(5)
            elapsed = time.monotonic() - began
            sent = len(self.turns) - start
            progress(f"{elapsed:5.0f}s  {sent} messages sent, {sent / elapsed:.1f}/s")

    async def drain(self, turns: Sequence[Turn], within: float) -> None:
        """Wait (up to `within` s) until every chat of `turns` had a reply to its last turn."""
        deadline = time.monotonic() + within
        last_turn: dict[int, Turn] = {t.chat_id: t for t in turns}
        while time.monotonic() < deadline:
            if all(
                any(d.at >= t.sent_at for d in self._chats[c].received)
                for c, t in last_turn.items()
            ):
                return
            await asyncio.sleep(0.2)
