"""Web chat adapter: a page at `/` and its JSON API under `/api/chat` (off unless enabled).

`POST /api/chat` takes `{"text": "...", "id": "optional client message id"}` and answers
`{"messages": [{"text": "...", "buttons": [{"title": "...", "payload": "..."}]}]}`. The
server chooses the sender: a new conversation gets a random one in a signed `HttpOnly`,
`SameSite=Strict` cookie (`bot.webchat_guard`), and a body naming a `sender` is refused.
Replies that arrive later (after Rasa was unavailable, or from staff) are taken with
`POST /api/chat/updates`; `POST /api/chat/reset` forgets the cookie (a new conversation).
Every POST must be `application/json` (415) and, if it has an `Origin`, come from the
app's own origin or `PUBLIC_URL` (403), so no other web page can drive the chat.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from bot.inbox import Incoming
from bot.keys import INBOX, METRICS, SESSIONMAKER, SETTINGS
from bot.webchat_guard import HOUR, WebchatGuard
from pmi import messages

CHANNEL = "webchat"
COOKIE = "pmi_chat"
MAX_TEXT = 4096
MAX_EXTERNAL_ID = 128  # inbound_messages.external_id
GUARD = web.AppKey("webchat_guard", WebchatGuard)
_MESSAGE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
STATIC = Path(__file__).parent / "static"


def _error(kind: type[web.HTTPError], reason: str, retry_after: int | None = None) -> web.HTTPError:
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return kind(
        text=json.dumps({"error": reason}), content_type="application/json", headers=headers
    )


def _bad(reason: str) -> web.HTTPError:
    return _error(web.HTTPBadRequest, reason)


def parse_chat_request(body: Any) -> tuple[str, str | None]:
    """Validate a chat request; return (text, client message id)."""
    if not isinstance(body, dict):
        raise _bad("body must be a JSON object with 'text'")
    if "sender" in body:
        raise _bad("'sender' is not accepted: the server keeps the conversation in a cookie")
    text, message_id = body.get("text"), body.get("id")
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
    return text, message_id


def external_id(sender: str, message_id: str | None) -> str:
    """The stored message id: the client's id within its conversation, else a random one."""
    if message_id is None:
        return uuid.uuid4().hex
    scoped = f"{sender}:{message_id}"
    if len(scoped) <= MAX_EXTERNAL_ID:
        return scoped
    return f"{sender}:#{hashlib.sha256(message_id.encode()).hexdigest()[:48]}"


def secure(request: web.Request) -> bool:
    """Behind HTTPS (public URL or the request itself), as for the console's cookies."""
    public = request.app[SETTINGS].app.public_url or ""
    return public.startswith("https://") or request.secure


def cookie_name(is_secure: bool) -> str:
    return f"__Host-{COOKIE}" if is_secure else COOKIE


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _check_post(request: web.Request) -> None:
    """Refuse a request another web page could make: a foreign Origin, a body not JSON."""
    origin = request.headers.get("Origin")
    if origin is not None:
        own = {f"{request.scheme}://{request.host}".lower()}
        public = request.app[SETTINGS].app.public_url
        if public:
            own.add(_origin(public))
        if origin.lower() not in own:
            raise _error(web.HTTPForbidden, "requests from other web sites are not accepted")
    if request.content_type != "application/json":
        raise _error(web.HTTPUnsupportedMediaType, "the body must be application/json")


def _sender(request: web.Request) -> str | None:
    value = request.cookies.get(cookie_name(secure(request)))
    return request.app[GUARD].cookies.sender_of(value)


def _set_cookie(response: web.StreamResponse, request: web.Request, value: str) -> None:
    is_secure = secure(request)
    response.set_cookie(
        cookie_name(is_secure),
        value,
        path="/",
        max_age=int(request.app[SETTINGS].channels.webchat.session_hours * HOUR),
        httponly=True,
        samesite="Strict",
        secure=is_secure,
    )


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
    _check_post(request)
    guard = request.app[GUARD]
    ip = guard.client_ip(request)
    refused = guard.refuse_message(ip)
    if refused:
        raise _error(web.HTTPTooManyRequests, refused, retry_after=60)
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise _bad("body must be valid JSON") from None
    text, message_id = parse_chat_request(body)
    sender, cookie = _sender(request), None
    if sender is None:
        if not guard.admit_session(ip):
            reason = "too many new conversations: try again later"
            raise _error(web.HTTPTooManyRequests, reason, retry_after=3600)
        sender = guard.cookies.new_sender()
        cookie = guard.cookies.sign(sender)
    incoming = Incoming(CHANNEL, sender, external_id(sender, message_id), text)
    received = await request.app[INBOX].accept(
        incoming,
        answer_now=True,
        before_turn=lambda contact_id: guard.urgent.note(contact_id, ip),  # the relay asks it
    )
    response = await _drain(request, received.contact_id)
    if cookie is not None:
        _set_cookie(response, request, cookie)
    return response


async def post_updates(request: web.Request) -> web.Response:
    """Take the replies queued for this browser's conversation since its last request."""
    _check_post(request)
    sender = _sender(request)
    if sender is None:
        return web.json_response({"messages": []})
    async with request.app[SESSIONMAKER]() as s:
        contact = await messages.get_contact(s, CHANNEL, sender)
    if contact is None:
        return web.json_response({"messages": []})
    return await _drain(request, contact.id)


async def post_reset(request: web.Request) -> web.Response:
    """Forget this browser's conversation: its next message starts a new one."""
    _check_post(request)
    response = web.json_response({"messages": []})
    is_secure = secure(request)
    response.del_cookie(
        cookie_name(is_secure), path="/", secure=is_secure, httponly=True, samesite="Strict"
    )
    return response


async def index(_: web.Request) -> web.FileResponse:
    """The chat page; no other site may frame it (to trick a click on its buttons)."""
    headers = {"X-Frame-Options": "DENY", "Content-Security-Policy": "frame-ancestors 'none'"}
    return web.FileResponse(STATIC / "index.html", headers=headers)


def setup_routes(app: web.Application) -> None:
    """The page and its API, with the guard (cookie key, limits) of this app."""
    app[GUARD] = WebchatGuard(app[SETTINGS])
    app.router.add_get("/", index)
    app.router.add_post("/api/chat", post_chat)
    app.router.add_post("/api/chat/updates", post_updates)
    app.router.add_post("/api/chat/reset", post_reset)
