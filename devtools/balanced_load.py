"""Worker conversations posted to several apps' Telegram webhooks behind a random balancer.

The load of the scale and fault suites (tests/scaled.py): it does not wait for replies;
what happened to each message is counted afterwards from the database.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import aiohttp

from devtools.fake_telegram import text_update
from devtools.service import Service
from devtools.stack import SECRET_HEADER, WEBHOOK_PATH, Stack


class Cluster(Protocol):
    """The scaled-out stack the load is sent to (tests/scaled.py's `Scaled`)."""

    stack: Stack
    apps: list[Service]
    http: aiohttp.ClientSession
    conversations: list[tuple[str, tuple[str, ...]]]

    def next_chat(self) -> int: ...

    def next_update(self) -> int: ...


@dataclass
class Sent:
    chat_id: int
    update_id: int
    text: str
    accepted: bool = False
    attempts: int = 0
    refused: int = 0  # answers other than 200 (the provider retries those)


class Load:
    """Worker conversations posted as Telegram updates to the apps' webhooks.

    One chat's messages are posted one after another (Telegram waits for the webhook's
    answer), each to an app chosen at random; the load does not wait for replies, so a
    chat's next message often arrives while the previous one is being processed, maybe
    by the other app. An update not answered 200 is posted again, with the same id, to
    an app chosen at random, until `give_up` seconds have passed, as Telegram does.
    """

    def __init__(self, scaled: Cluster, seed: int, *, gap: tuple[float, float] = (0, 0.4)):
        self.scaled = scaled
        self.rng = random.Random(seed)
        self.gap = gap
        self.sent: list[Sent] = []
        self.statuses: Counter[int] = Counter()  # the webhooks' answers, by HTTP status
        self.apps: list[Service] = list(scaled.apps)  # the load balancer's choice
        self.give_up = 180.0

    def chats(self) -> list[int]:
        return sorted({s.chat_id for s in self.sent})

    async def post(self, sent: Sent, language: str) -> None:
        update = text_update(sent.update_id, sent.chat_id, sent.text, language)
        headers = {SECRET_HEADER: self.scaled.stack.webhook_secret}
        deadline = time.monotonic() + self.give_up
        timeout = aiohttp.ClientTimeout(total=15)
        while time.monotonic() < deadline:
            app = self.rng.choice(self.apps)
            sent.attempts += 1
            try:
                async with self.scaled.http.post(
                    app.url + WEBHOOK_PATH, json=update, headers=headers, timeout=timeout
                ) as resp:
                    await resp.read()
                    self.statuses[resp.status] += 1
                    if resp.status == 200:
                        sent.accepted = True
                        return
                    sent.refused += 1
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.2)

    async def conversation(self, language: str, turns: Sequence[str]) -> None:
        chat_id = self.scaled.next_chat()
        for turn in turns:
            sent = Sent(chat_id, self.scaled.next_update(), turn)
            self.sent.append(sent)
            await self.post(sent, language)
            await asyncio.sleep(self.rng.uniform(*self.gap))

    async def run(self, chats: int, turns: int | None = None) -> None:
        """`chats` conversations at once, each the first `turns` turns of a script."""
        scripts = self.scaled.conversations
        await asyncio.gather(
            *(
                self.conversation(
                    scripts[i % len(scripts)][0], scripts[i % len(scripts)][1][:turns]
                )
                for i in range(chats)
            )
        )

    def accepted_count(self) -> int:
        return sum(s.accepted for s in self.sent)
