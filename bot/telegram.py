"""Telegram adapter (python-telegram-bot 22): updates in, replies out.

Webhook mode (a public HTTPS URL and a secret are configured): Telegram posts updates to
`/telegram/webhook`; the secret header is checked in constant time, the update is stored
before the 200 that acknowledges it, and processed afterwards. Polling mode (only a token):
PTB's updater fetches updates and hands each one to the same code.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import time
from datetime import timedelta

from aiohttp import web
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut

from bot.delivery import NotYet, Outgoing, Rejected, RetryLater, split_text
from bot.inbox import Inbox, Incoming
from bot.media import FetchFailed, TooLarge
from pmi.media import MediaRef

logger = logging.getLogger(__name__)
CHANNEL = "telegram"
MAX_MESSAGE = 4096
CALLBACK_LIMIT = 64  # bytes Telegram allows in callback_data
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
ALLOWED_UPDATES = ["message", "callback_query"]
POLL_SECONDS = 10  # long-polling timeout of getUpdates
PRIVATE = "private"  # only private chats are workers; groups and channels are not stored
GROUP_INTERVAL = 3.0  # seconds between messages to one group (Telegram: about 20 a minute)
GROUPS_REMEMBERED = 10_000  # groups told once (in memory: at most one notice per process)


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


def chat_ref(chat_id: str) -> int | str:
    """A numeric chat id as the Bot API's integer; a public channel's "@name" as it is
    (the staff chat may be either)."""
    return int(chat_id) if chat_id.lstrip("-").isdigit() else chat_id


def _seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class TelegramSender:
    """Outbox sender: at most one message per second per chat and about 25 per second in all
    (Telegram's limits); honours 429 retry_after.

    A chat written to less than a second ago answers NotYet, so the outbox sends other
    chats' replies meanwhile instead of waiting; the parts of one long reply are paced here.
    """

    def __init__(self, bot: Bot, min_interval: float = 1.0, per_second: float = 25.0) -> None:
        self._bot = bot
        self._interval = min_interval
        self._spacing = 1.0 / per_second
        self._next_any = 0.0  # earliest time of the next send to any chat
        self._last: dict[str, float] = {}

    async def send(self, message: Outgoing) -> str | None:
        """Send the parts not yet accepted; a failure reports how many parts went out."""
        parts = split_text(message.text, MAX_MESSAGE)
        wait = self._last.get(message.chat_id, 0) + self._interval - time.monotonic()
        if wait > 0:
            raise NotYet(wait)
        sent_id: str | None = None
        for i in range(message.parts_sent, len(parts)):
            await self._pace(message.chat_id)
            markup = keyboard(message.buttons) if i == len(parts) - 1 else None
            try:
                sent = await self._bot.send_message(
                    chat_id=chat_ref(message.chat_id), text=parts[i], reply_markup=markup
                )
            except RetryAfter as exc:
                raise RetryLater(_seconds(exc.retry_after), "telegram rate limit", i) from exc
            except (Forbidden, BadRequest) as exc:
                raise Rejected(f"telegram refused: {exc.message}") from exc
            except (TimedOut, NetworkError) as exc:
                raise RetryLater(2, f"telegram unreachable: {exc}", i) from exc
            finally:
                self._forget_idle_chats()
                self._last[message.chat_id] = time.monotonic()
            sent_id = str(sent.message_id)
        return sent_id

    async def _pace(self, chat_id: str) -> None:
        """Wait for this chat's next slot (between parts) and the bot's overall spacing."""
        now = time.monotonic()
        chat_wait = self._last.get(chat_id, 0) + self._interval - now
        slot = max(now, self._next_any)
        self._next_any = slot + self._spacing
        wait = max(chat_wait, slot - now)
        if wait > 0:
            await asyncio.sleep(wait)

    def _forget_idle_chats(self) -> None:
        """Keep the per-chat clock small: chats quiet for longer than the interval drop out."""
        if len(self._last) > 1000:
            horizon = time.monotonic() - self._interval
            self._last = {k: v for k, v in self._last.items() if v > horizon}


def file_url(base_url: str) -> str:
    """Bot API file downloads live beside the methods: .../bot<token> -> .../file/bot<token>."""
    root, _, last = base_url.rstrip("/").rpartition("/")
    return f"{root}/file/{last}"


class TelegramMedia:
    """Media source for the fetcher: getFile, then the file's bytes."""

    def __init__(self, bot: Bot) -> None:
        self._bot = bot

    async def fetch(self, provider_ref: str, max_bytes: int) -> bytes:
        try:
            file = await self._bot.get_file(provider_ref)
            if file.file_size and file.file_size > max_bytes:
                raise TooLarge(f"{file.file_size} bytes")
            return bytes(await file.download_as_bytearray())
        except BadRequest as exc:  # e.g. over the Bot API's own 20 MB download limit
            raise TooLarge(exc.message) from exc
        except (TimedOut, NetworkError) as exc:
            raise FetchFailed(f"telegram unreachable: {exc}") from exc


def media_of(message: Message) -> MediaRef | None:
    """The file a Telegram message carries (the largest size of a photo), if any."""
    if message.photo:
        photo = message.photo[-1]
        return MediaRef("photo", photo.file_id, "image/jpeg", photo.file_size)
    for kind, item in (
        ("voice", message.voice),
        ("voice", message.audio),
        ("video", message.video),
        ("document", message.document),
    ):
        if item is not None:
            mime = getattr(item, "mime_type", None) or "application/octet-stream"
            return MediaRef(kind, item.file_id, mime, item.file_size)
    return None


def _check_shape(update: Update) -> None:
    """Refuse what Telegram never sends (ValueError), so it is a 400 and not a crash later."""
    message = update.message
    if message is not None:
        chat = message.chat
        if chat is None or isinstance(chat.id, bool) or not isinstance(chat.id, int):
            raise ValueError("message without an integer chat id")
        if not isinstance(message.text, str | None) or not isinstance(message.caption, str | None):
            raise ValueError("text or caption that is not a string")
    query = update.callback_query
    if query is not None:
        if not isinstance(query.data, str | None):
            raise ValueError("callback data that is not a string")
        chat = query.message.chat if query.message is not None else None
        if chat is None or isinstance(chat.id, bool) or not isinstance(chat.id, int):
            raise ValueError("callback without an integer chat id")


class TelegramAdapter:
    """Turns Telegram updates into stored inbound messages and drives the relay."""

    def __init__(
        self, bot: Bot, inbox: Inbox, secret: str | None, group_notice: str | None = None
    ) -> None:
        """`group_notice`: the one reply a group or channel gets (data/replies.yml)."""
        self.bot = bot
        self._group_notice = group_notice
        self._inbox = inbox
        self._secret = secret
        self._polling: asyncio.Task[None] | None = None
        self._groups_told: set[int] = set()

    async def _not_private(self, update: Update) -> bool:
        """A group or channel update: stored nowhere; one polite notice per group at most."""
        message = update.effective_message
        chat = message.chat if message is not None else None
        if chat is None or chat.type == PRIVATE:
            return False
        told = chat.id in self._groups_told or len(self._groups_told) >= GROUPS_REMEMBERED
        if self._group_notice and not told:
            self._groups_told.add(chat.id)
            try:
                await self.bot.send_message(chat_id=chat.id, text=self._group_notice)
            except (BadRequest, Forbidden, NetworkError) as exc:
                logger.info("group notice not sent: %s", exc)
        return True

    def incoming(self, update: Update) -> Incoming | None:
        """The update's message as the inbox takes it; None if it carries nothing for us."""
        media = None
        if update.callback_query is not None:
            query = update.callback_query
            message, text, user = query.message, query.data, query.from_user
        else:
            message = update.message
            media = media_of(message) if message else None
            text = (message.text or message.caption or "") if message else None
            user = message.from_user if message else None
        if message is None or not (text or media):
            return None
        chat, update_id = str(message.chat.id), str(update.update_id)
        hint = (user.language_code or "")[:2] if user else None
        return Incoming(CHANNEL, chat, update_id, (text or "")[:MAX_MESSAGE], media, hint or None)

    async def handle(self, update: Update) -> None:
        """Store the update's message (processed in the background); groups get a notice."""
        if await self._not_private(update):
            return
        if update.callback_query is not None:
            try:
                await update.callback_query.answer()
            except (BadRequest, NetworkError) as exc:  # an old or repeated callback
                logger.info("callback answer failed: %s", exc)
        incoming = self.incoming(update)
        if incoming is not None:
            await self._inbox.accept(incoming)

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
            _check_shape(update)
        except (UnicodeDecodeError, AttributeError, KeyError, TypeError, ValueError, OverflowError):
            # json.JSONDecodeError is a ValueError
            raise web.HTTPBadRequest(text="not a Telegram update") from None
        await self.handle(update)  # stored before the 200; processed in the background
        return web.json_response({"ok": True})

    async def start_polling(self) -> None:
        """Polling mode: fetch updates ourselves and confirm each only once it is stored.

        Telegram forgets an update once getUpdates is called with a higher offset; PTB's
        own updater advances the offset even when handling fails, which loses the update
        if the database is down. Here the offset moves past an update only after it was
        stored, so a failure (or a crash) fetches it again.
        """
        await self.bot.delete_webhook()  # a webhook and getUpdates exclude each other
        self._polling = asyncio.create_task(self._poll(), name="telegram-polling")

    async def _poll(self) -> None:
        offset: int | None = None
        while True:
            try:
                updates = await self.bot.get_updates(
                    offset=offset, timeout=POLL_SECONDS, allowed_updates=ALLOWED_UPDATES
                )
            except (TimedOut, NetworkError) as exc:
                logger.warning("telegram getUpdates failed: %s", exc)
                await asyncio.sleep(2)
                continue
            for update in updates:
                try:
                    await self.handle(update)
                except Exception:  # the database is unavailable: fetch the update again
                    logger.exception(
                        "update_id=%s not stored; will fetch it again", update.update_id
                    )
                    await asyncio.sleep(2)
                    break
                offset = update.update_id + 1

    async def stop(self) -> None:
        if self._polling is not None:
            self._polling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._polling
