"""The same closed loop as devtools/load.py, sent straight to Rasa's REST channel ("Rasa
alone" in the benchmarks)."""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp

from devtools.load import Conversation, closed_loop

PER_CHAT_INTERVAL = 1.0  # the outbox sends at most one message per second per chat


@dataclass
class RestTurn:
    """One message sent straight to Rasa's REST channel."""

    sender: str
    text: str
    sent_at: float
    seconds: float | None = None  # None: failed
    replies: int = 0


async def rest_turn(
    http: aiohttp.ClientSession,
    url: str,
    turn: RestTurn,
    language: str,
    client_timeout: aiohttp.ClientTimeout,
) -> RestTurn:
    """Post one message to the REST webhook `url`; fills in the turn's time and replies."""
    payload = {
        "sender": turn.sender,
        "message": turn.text,
        "metadata": {"language": language, "channel": "telegram"},
    }
    try:
        async with http.post(url, json=payload, timeout=client_timeout) as resp:
            body = await resp.json() if resp.status == 200 else None
    except (aiohttp.ClientError, TimeoutError):
        body = None
    if isinstance(body, list):
        turn.seconds = time.monotonic() - turn.sent_at
        turn.replies = len(body)
    return turn


async def rasa_rest_load(
    http: aiohttp.ClientSession,
    rasa_url: str,
    conversations: Sequence[Conversation],
    concurrency: int,
    *,
    duration: float | None = None,
    per_slot: int | None = None,
    settle: float = 1.3,
    prefix: str = "rest",
    request_timeout: float = 60.0,
) -> list[RestTurn]:
    """The same closed loop as `TelegramLoad`, straight to Rasa's `/webhooks/rest/webhook`.

    After each answer a slot waits as long as a worker on Telegram would before the next
    turn (`settle`, plus one second per extra reply: the outbox's per-chat pace), so that
    both see the same offered load at the same concurrency.
    """
    url = rasa_url.rstrip("/") + "/webhooks/rest/webhook"
    turns: list[RestTurn] = []
    stop_at = time.monotonic() + duration if duration is not None else None
    senders = itertools.count(1)
    client_timeout = aiohttp.ClientTimeout(total=request_timeout)

    async def play(conversation: Conversation) -> None:
        sender = f"{prefix}-{next(senders)}-{secrets.token_hex(3)}"
        for text in conversation.turns:
            if stop_at is not None and time.monotonic() >= stop_at:
                return
            turn = RestTurn(sender, text, time.monotonic())
            turns.append(turn)
            await rest_turn(http, url, turn, conversation.language, client_timeout)
            await asyncio.sleep(settle + max(turn.replies - 1, 0) * PER_CHAT_INTERVAL)

    await closed_loop(conversations, concurrency, play, stop_at=stop_at, per_slot=per_slot)
    return turns
