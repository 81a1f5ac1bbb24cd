"""Telegram adapter (python-telegram-bot 22): updates in, replies out.

Webhook mode (a public HTTPS URL and a secret are configured): Telegram posts updates to
`/telegram/webhook`; the secret header is checked in constant time, the update is stored
before the 200 that acknowledges it, and processed afterwards. Polling mode (only a token):
PTB's updater fetches updates and hands each one to the same code.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from datetime import timedelta

from aiohttp import web
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut
from telegram.ext import Application, ContextTypes, TypeHandler

from bot.outbox import Outbox, Outgoing, Rejected, RetryLater
from bot.relay import Relay

logger = logging.getLogger(__name__)
CHANNEL = "telegram"
MAX_MESSAGE = 4096
CALLBACK_LIMIT = 64  # bytes Telegram allows in callback_data
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name


def split_text(text: str, limit: int = MAX_MESSAGE) -> list[str]:
    """Split a long reply into parts under Telegram's limit, at paragraph or line breaks."""
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


def keyboard(buttons: list[dict[str, str]]) -> InlineKeyboardMarkup | None:
    """Rasa buttons as an inline keyboard, two per row (one per row for long titles)."""
    if not buttons:
        return None
    keys = []
    for b in buttons:
        data = b["payload"] if len(b["payload"].encode()) <= CALLBACK_LIMIT else b["title"]
        keys.append(InlineKeyboardButton(b["title"][:64], callback_data=data[:CALLBACK_LIMIT]))
    width = 1 if any(len(k.text) > 20 for k in keys) else 2
    return InlineKeyboardMarkup([keys[i : i + width] for i in range(0, len(keys), width)])


def _seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class TelegramSender:
    """Outbox sender: at most one message per second per chat; honours 429 retry_after."""

    def __init__(self, bot: Bot, min_interval: float = 1.0) -> None:
        self._bot = bot
        self._interval = min_interval
        self._last: dict[str, float] = {}

    async def send(self, message: Outgoing) -> None:
        parts = split_text(message.text)
        for i, part in enumerate(parts):
            wait = self._last.get(message.chat_id, 0) + self._interval - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            markup = keyboard(message.buttons) if i == len(parts) - 1 else None
            try:
                await self._bot.send_message(
                    chat_id=int(message.chat_id), text=part, reply_markup=markup
                )
            except RetryAfter as exc:
                raise RetryLater(_seconds(exc.retry_after), "telegram rate limit") from exc
            except (Forbidden, BadRequest) as exc:
                raise Rejected(f"telegram refused: {exc.message}") from exc
            except (TimedOut, NetworkError) as exc:
                raise RetryLater(2, f"telegram unreachable: {exc}") from exc
            finally:
                self._last[message.chat_id] = time.monotonic()


class TelegramAdapter:
    """Turns Telegram updates into stored inbound messages and drives the relay."""

    def __init__(self, bot: Bot, relay: Relay, outbox: Outbox, secret: str | None) -> None:
        self.bot = bot
        self._relay = relay
        self._outbox = outbox
        self._secret = secret
        self._tasks: set[asyncio.Task[None]] = set()
        self._application: Application | None = None

    async def store(self, update: Update) -> tuple[int, str | None] | None:
        """Store the update's message; None if it carries nothing for us or is a duplicate."""
        if update.callback_query is not None:
            query = update.callback_query
            message, text, user = query.message, query.data, query.from_user
            try:
                await query.answer()
            except (BadRequest, NetworkError) as exc:  # an old or repeated callback
                logger.info("callback answer failed: %s", exc)
        else:
            message = update.message
            text = message.text if message else None
            user = message.from_user if message else None
        if message is None or not text:
            return None
        received = await self._relay.receive(
            CHANNEL, str(message.chat.id), str(update.update_id), text[:MAX_MESSAGE]
        )
        if received.inbound_id is None:
            return None
        hint = (user.language_code or "")[:2] if user else None
        return received.contact_id, hint

    async def _process(self, contact_id: int, hint: str | None) -> None:
        await self._relay.process(contact_id, hint=hint)
        self._outbox.notify()

    def _spawn(self, contact_id: int, hint: str | None) -> None:
        task = asyncio.create_task(self._process(contact_id, hint))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def handle(self, update: Update) -> None:
        stored = await self.store(update)
        if stored:
            self._spawn(*stored)

    async def webhook(self, request: web.Request) -> web.Response:
        """Receive one update from Telegram (webhook mode)."""
        given = request.headers.get(SECRET_HEADER, "")
        if not self._secret or not hmac.compare_digest(given.encode(), self._secret.encode()):
            raise web.HTTPForbidden(text="bad secret token")
        try:
            data = json.loads(await request.read())
            if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
                raise ValueError("no update_id")
            update = Update.de_json(data, self.bot)
        except (UnicodeDecodeError, AttributeError, KeyError, TypeError, ValueError):
            # json.JSONDecodeError is a ValueError
            raise web.HTTPBadRequest(text="not a Telegram update") from None
        await self.handle(update)  # stored before the 200; processed in the background
        return web.json_response({"ok": True})

    async def start_polling(self) -> None:
        """Polling mode: PTB's updater feeds every update to `handle`."""

        async def on_update(update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
            await self.handle(update)

        application = Application.builder().bot(self.bot).build()
        application.add_handler(TypeHandler(Update, on_update))
        await application.initialize()
        await application.start()
        assert application.updater is not None
        await application.updater.start_polling(allowed_updates=["message", "callback_query"])
        self._application = application

    async def stop(self) -> None:
        if self._application is not None:
            if self._application.updater:
                await self._application.updater.stop()
            await self._application.stop()
            await self._application.shutdown()
        for task in list(self._tasks):
            task.cancel()
