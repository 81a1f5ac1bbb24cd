"""What a channel's sender promises the outbox: the message it gets and what it may raise.

Senders (Telegram, WhatsApp, the staff chat) raise these to say "later", "never",
"not yet" or "outside the 24-hour window"; the outbox turns that into a schedule.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from pmi.messages import WINDOW_CLOSED


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


STOP_SECONDS = 5  # how long a stop waits for cancelled tasks to unwind


async def cancel_and_wait(tasks: set[asyncio.Task[Any]]) -> None:
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
