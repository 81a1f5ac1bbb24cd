"""WhatsApp Cloud API adapter: the webhook in, replies out through pywa's async client.

Webhook (`/whatsapp/webhook` on the app's server):
- `GET`: Meta's verification handshake (`hub.mode=subscribe`, `hub.verify_token`, echo
  `hub.challenge`); a wrong token answers 403.
- `POST`: the raw body must carry `X-Hub-Signature-256`, an HMAC-SHA256 with the app
  secret (missing: 401, wrong: 403, nothing stored). Every message in the body is stored
  before the 200 (unique on its `wamid`, so Meta's retries do nothing twice); a database
  failure answers 500 so that Meta delivers again. Status callbacks move the matching
  outbound message forward (delivered, read) or record its failure.

The body is parsed here rather than by pywa's update dispatcher, which reads only the
first message of each change and acknowledges even when a handler failed; pywa's client
sends (text, buttons, lists, templates) and downloads media.

Replies: free-form only inside the 24-hour customer-service window that opens with the
worker's last message. Outside it the sender sends the configured re-opening template (once
per closed window) and the reply waits until the worker writes back; without a template
it waits, flagged for staff.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from aiohttp import web
from pywa import errors as wa_errors
from pywa_async import WhatsApp
from pywa_async.types import Button, Section, SectionList, SectionRow
from pywa_async.types.templates import TemplateLanguage
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.delivery import Outgoing, OutsideWindow, Rejected, RetryLater, split_text
from bot.inbox import Inbox, Incoming
from bot.media import FetchFailed, TooLarge
from pmi import messages
from pmi.db import utcnow
from pmi.knowledge import Replies
from pmi.media import MediaRef
from pmi.models import OutboundStatus
from pmi.settings import WhatsAppSettings

logger = logging.getLogger(__name__)
CHANNEL = "whatsapp"
SIGNATURE_HEADER = "X-Hub-Signature-256"
MAX_TEXT = 4096
MAX_BODY = 1024  # body of an interactive message
MAX_BUTTONS = 3
MAX_ROWS = 10
# Meta counts 24 hours from the worker's message; keep a margin for clocks and queues.
WINDOW = timedelta(hours=24) - timedelta(minutes=10)
MEDIA_KINDS = {"image": "photo", "document": "document", "video": "video", "audio": "voice"}


@dataclass(frozen=True)
class WaMessage:
    """One worker message from the webhook, as the relay stores it."""

    wa_id: str
    message_id: str
    text: str
    media: MediaRef | None = None


@dataclass(frozen=True)
class WaStatus:
    message_id: str
    status: str  # sent | delivered | read | failed
    error: str | None = None
    error_code: int | None = None


def signature_valid(secret: str, body: bytes, header: str) -> bool:
    """Check `X-Hub-Signature-256: sha256=<hex>` in constant time."""
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.strip().encode())


def _message(raw: dict[str, Any]) -> WaMessage | None:
    """A supported message in our terms; None for reactions, stickers and the like."""
    kind, wa_id, message_id = raw.get("type"), raw.get("from"), raw.get("id")
    if not (isinstance(wa_id, str) and isinstance(message_id, str) and isinstance(kind, str)):
        raise ValueError("message without from/id/type")
    if not (0 < len(wa_id) <= 64 and 0 < len(message_id) <= 128):
        raise ValueError("sender or message id of an impossible length")
    body = raw.get(kind)
    body = body if isinstance(body, dict) else {}
    text: Any = None
    media = None
    if kind == "text":
        text = body.get("body")
    elif kind == "interactive":  # a reply button or a list row: its id is the payload
        reply = body.get("button_reply") or body.get("list_reply") or {}
        text = reply.get("id") or reply.get("title")
    elif kind == "button":  # a quick-reply button of a template
        text = body.get("payload") or body.get("text")
    elif kind == "location":
        lat, lng = body.get("latitude"), body.get("longitude")
        if isinstance(lat, int | float) and isinstance(lng, int | float):
            place = " ".join(str(body[k]) for k in ("name", "address") if body.get(k))
            text = f"https://maps.google.com/?q={lat},{lng} {place}".strip()
    elif kind in MEDIA_KINDS:
        if not isinstance(body.get("id"), str):
            raise ValueError("media without id")
        media = MediaRef(
            kind=MEDIA_KINDS[kind] if kind != "audio" or body.get("voice", True) else "document",
            provider_ref=body["id"],
            mime_type=str(body.get("mime_type") or "application/octet-stream"),
        )
        text = body.get("caption") or ""
    if not isinstance(text, str):
        return None
    return WaMessage(wa_id, message_id, text, media)


def parse_webhook(
    payload: Any, phone_number_id: str | None
) -> tuple[list[WaMessage], list[WaStatus]]:
    """Messages and statuses for our phone number; ValueError when the shape is wrong."""
    if not isinstance(payload, dict) or not isinstance(payload.get("entry"), list):
        raise ValueError("not a WhatsApp webhook body")
    found: list[WaMessage] = []
    statuses: list[WaStatus] = []
    for entry in payload["entry"]:
        for change in entry.get("changes") or [] if isinstance(entry, dict) else []:
            value = change.get("value") if isinstance(change, dict) else None
            if not isinstance(value, dict) or change.get("field") != "messages":
                continue
            metadata = value.get("metadata") or {}
            if phone_number_id and metadata.get("phone_number_id") not in (None, phone_number_id):
                continue  # another number of the same business account
            for raw in value.get("messages") or []:
                message = _message(raw) if isinstance(raw, dict) else None
                if message is not None:
                    found.append(message)
            for raw in value.get("statuses") or []:
                if isinstance(raw, dict) and isinstance(raw.get("id"), str):
                    error = (raw.get("errors") or [{}])[0]
                    statuses.append(
                        WaStatus(
                            raw["id"],
                            str(raw.get("status")),
                            str(error.get("title") or error.get("message") or "") or None,
                            error.get("code") if isinstance(error.get("code"), int) else None,
                        )
                    )
    return found, statuses


async def apply_status(s: AsyncSession, status: WaStatus) -> None:
    """Move an outbound message forward on a status callback, or record its failure."""
    message = await messages.outbound_by_external_id(s, status.message_id)
    if message is None:
        return
    now = utcnow()
    if status.status == "delivered" and message.delivered_at is None:
        message.delivered_at = now
    elif status.status == "read":
        message.delivered_at = message.delivered_at or now
        message.read_at = message.read_at or now
    elif status.status == "failed":
        message.status = OutboundStatus.FAILED
        message.last_error = f"whatsapp {status.error_code}: {status.error}"[:255]
        logger.warning("outbound %s failed after sending: %s", message.id, status.error_code)


def create_client(settings: WhatsAppSettings, http: httpx.AsyncClient) -> WhatsApp:
    """pywa's async client on our own HTTP client, pointed at the configured Graph URL."""
    client = WhatsApp(
        phone_id=settings.phone_number_id,
        token=settings.token,
        session=http,
        server=None,
        api_version=settings.api_version,
    )
    http.base_url = f"{settings.graph_url.rstrip('/')}/v{settings.api_version}"
    return client


def _retry_seconds(error: wa_errors.WhatsAppError) -> float | None:
    """Seconds to wait for an error worth retrying, else None."""
    if isinstance(error, wa_errors.ThrottlingError):
        return 30.0
    if isinstance(error, wa_errors.AuthorizationError):
        return 300.0  # a configuration problem (token): keep the messages, log loudly
    status = error.status_code
    if error.is_transient or isinstance(error, wa_errors.ServiceUnavailable):
        return 10.0
    if status is not None and (status >= 500 or status == 429):
        return 10.0
    return None


class WhatsAppSender:
    """Outbox sender for WhatsApp: parts, buttons or lists, the 24-hour window, templates."""

    windowed = True  # see Outbox: replies may be held for the customer-service window

    def __init__(self, client: WhatsApp, settings: WhatsAppSettings, replies: Replies) -> None:
        for code in settings.template_languages.values():
            TemplateLanguage(code)  # fail at start-up, not at the first held reply
        self._client = client
        self._settings = settings
        self._replies = replies

    async def send(self, message: Outgoing) -> str | None:
        opened = message.last_inbound_at
        if opened is None or utcnow() - opened > WINDOW:
            raise OutsideWindow(await self._reopen(message), self._settings.reopen_template)
        parts = split_text(message.text, MAX_TEXT)
        if message.buttons and len(parts[-1]) > MAX_BODY:
            parts[-1:] = split_text(parts[-1], MAX_BODY)
        sent_id = None
        for i in range(message.parts_sent, len(parts)):
            last = i == len(parts) - 1
            buttons = self._buttons(message) if last else None
            try:
                sent = await self._client.send_message(message.chat_id, parts[i], buttons=buttons)
            except wa_errors.ReEngagementMessage as exc:
                raise OutsideWindow() from exc
            except wa_errors.WhatsAppError as exc:
                delay = _retry_seconds(exc)
                if delay is None:
                    raise Rejected(f"whatsapp refused: {exc.code} {exc.message}"[:200]) from exc
                raise RetryLater(delay, f"whatsapp error {exc.code}", i) from exc
            except httpx.HTTPError as exc:
                raise RetryLater(5, f"whatsapp unreachable: {exc.__class__.__name__}", i) from exc
            sent_id = sent.id
        return sent_id

    def _buttons(self, message: Outgoing) -> list[Button] | SectionList | None:
        """Up to 3 reply buttons, up to 10 list rows; more stay as the text's own numbers."""
        options = message.buttons
        if not options or len(options) > MAX_ROWS:
            return None
        if len(options) <= MAX_BUTTONS and all(len(b["title"]) <= 20 for b in options):
            return [Button(title=b["title"], callback_data=b["payload"][:256]) for b in options]
        rows = [
            SectionRow(
                title=b["title"][:24],
                callback_data=b["payload"][:200],
                description=b["title"][:72] if len(b["title"]) > 24 else None,
            )
            for b in options
        ]
        title = self._replies.get("choose_option", message.language or "id")[:20]
        return SectionList(button_title=title, sections=[Section(title=title[:24], rows=rows)])

    async def _reopen(self, message: Outgoing) -> str | None:
        """Send the re-opening template once per closed window; its wamid, or None."""
        name = self._settings.reopen_template
        if not name or not message.may_reopen:
            return None
        code = self._settings.template_languages.get(message.language or "id", "id")
        try:
            sent = await self._client.send_template(
                message.chat_id, name=name, language=TemplateLanguage(code)
            )
        except wa_errors.WhatsAppError as exc:
            delay = _retry_seconds(exc) or 60.0
            raise RetryLater(delay, f"whatsapp template failed: {exc.code}") from exc
        except httpx.HTTPError as exc:
            raise RetryLater(5, f"whatsapp unreachable: {exc.__class__.__name__}") from exc
        return sent.id


class WhatsAppMedia:
    """Media source for the fetcher: the media id's URL, then its bytes."""

    def __init__(self, client: WhatsApp) -> None:
        self._client = client

    async def fetch(self, provider_ref: str, max_bytes: int) -> bytes:
        try:
            info = await self._client.get_media_url(provider_ref)
            if info.file_size and info.file_size > max_bytes:
                raise TooLarge(f"{info.file_size} bytes")
            return await self._client.get_media_bytes(info.url)
        except wa_errors.WhatsAppError as exc:
            raise FetchFailed(f"whatsapp error {exc.code}") from exc
        except httpx.HTTPError as exc:
            raise FetchFailed(f"whatsapp unreachable: {exc.__class__.__name__}") from exc


class WhatsAppAdapter:
    """Turns webhook bodies into stored inbound messages and drives the relay."""

    def __init__(
        self,
        settings: WhatsAppSettings,
        inbox: Inbox,
        sessions: async_sessionmaker[AsyncSession],
    ) -> None:
        self._settings = settings
        self._inbox = inbox
        self._sessions = sessions

    async def verify(self, request: web.Request) -> web.Response:
        """Answer Meta's subscription handshake."""
        q = request.query
        token = self._settings.verify_token or ""
        given = q.get("hub.verify_token", "")
        if (
            q.get("hub.mode") != "subscribe"
            or not token
            or not hmac.compare_digest(given.encode(), token.encode())
        ):
            raise web.HTTPForbidden(text="verification failed")
        return web.Response(text=q.get("hub.challenge", ""))

    async def webhook(self, request: web.Request) -> web.Response:
        """Receive one webhook body: check the signature, store, acknowledge, process."""
        body = await request.read()
        header = request.headers.get(SIGNATURE_HEADER)
        if not header:
            raise web.HTTPUnauthorized(text="missing signature")
        if not signature_valid(self._settings.app_secret or "", body, header):
            raise web.HTTPForbidden(text="bad signature")
        try:
            found, statuses = parse_webhook(json.loads(body), self._settings.phone_number_id)
        except (UnicodeDecodeError, ValueError, AttributeError, TypeError):
            raise web.HTTPBadRequest(text="not a WhatsApp webhook body") from None
        for message in found:
            text = message.text[:MAX_TEXT]
            incoming = Incoming(CHANNEL, message.wa_id, message.message_id, text, message.media)
            await self._inbox.accept(incoming)
        if statuses:
            async with self._sessions() as s, s.begin():
                for status in statuses:
                    await apply_status(s, status)
        return web.json_response({"ok": True})
