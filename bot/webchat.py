"""Local web chat adapter: a page at `/` and its JSON API at `/api/chat`.

`POST /api/chat` takes `{"sender": "...", "text": "...", "id": "optional client message id"}`
and answers `{"messages": [{"text": "...", "buttons": [{"title": "...", "payload": "..."}]}]}`.
Replies that arrive later (after Rasa was unavailable) are fetched with
`GET /api/chat/updates?sender=...`.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.keys import METRICS, RELAY, SESSIONMAKER
from pmi import messages

CHANNEL = "webchat"
MAX_TEXT = 4096
_SENDER = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_MESSAGE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
STATIC = Path(__file__).parent / "static"


def _bad(reason: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": reason}), content_type="application/json")


def parse_chat_request(body: Any) -> tuple[str, str, str | None]:
    """Validate a chat request; return (sender, text, client message id)."""
    if not isinstance(body, dict):
        raise _bad("body must be a JSON object with 'sender' and 'text'")
    sender, text, message_id = body.get("sender"), body.get("text"), body.get("id")
    if not isinstance(sender, str) or not _SENDER.match(sender):
        raise _bad("'sender' must be 1-64 characters: letters, digits, '_', '.', ':' or '-'")
    if not isinstance(text, str):
        raise _bad("'text' must be a string")
    text = _CONTROL.sub("", text).strip()
    if not text:
        raise _bad("'text' must not be empty")
    if len(text) > MAX_TEXT:
        raise _bad(f"'text' must be at most {MAX_TEXT} characters")
    if message_id is not None and (
        not isinstance(message_id, str) or not _MESSAGE_ID.match(message_id)
    ):
        raise _bad("'id' must be 1-128 characters: letters, digits, '_', '.', ':' or '-'")
    return sender, text, message_id


async def _drain(request: web.Request, contact_id: int) -> web.Response:
    async with request.app[SESSIONMAKER]() as s, s.begin():
        sent = await messages.take_pending_outbound(s, contact_id)
    if sent:
        request.app[METRICS].outbound.labels(CHANNEL).inc(len(sent))
    return web.json_response(
        {"messages": [{"text": m.text, "buttons": m.buttons or []} for m in sent]}
    )


async def post_chat(request: web.Request) -> web.Response:
    """Take one web chat message and answer with the bot's replies."""
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise _bad("body must be valid JSON") from None
    sender, text, message_id = parse_chat_request(body)
    relay = request.app[RELAY]
    received = await relay.receive(CHANNEL, sender, message_id or uuid.uuid4().hex, text)
    if received.inbound_id is not None:
        await relay.process(received.contact_id)
    return await _drain(request, received.contact_id)


async def get_updates(request: web.Request) -> web.Response:
    """Return replies queued for a sender since its last request."""
    sender = request.query.get("sender", "")
    if not _SENDER.match(sender):
        raise _bad("'sender' query parameter is required")
    async with request.app[SESSIONMAKER]() as s:
        contact = await messages.get_contact(s, CHANNEL, sender)
    if contact is None:
        return web.json_response({"messages": []})
    return await _drain(request, contact.id)


async def index(_: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html")


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/", index)
    app.router.add_post("/api/chat", post_chat)
    app.router.add_get("/api/chat/updates", get_updates)
