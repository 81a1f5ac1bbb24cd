"""A local fake of the WhatsApp Cloud (Graph) API, for pywa's real async client.

Serves `POST /v<version>/<phone id>/messages` (text, interactive, template), the media
endpoints (`GET /v<version>/<media id>` and the download URL it returns), records what
was sent, and can answer the next sends with Graph errors (e.g. 130429, a rate limit).
Also builds signed webhook bodies as Meta sends them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from devtools.local_server import LocalServer

PHONE_ID = "109876543210"


@dataclass
class FakeGraph(LocalServer):
    token: str = "wa-test-token"  # noqa: S105 - the fake's own token
    sent: list[dict[str, Any]] = field(default_factory=list)
    # (HTTP status, Graph error code) to answer the next sends with
    fail_next: list[tuple[int, int]] = field(default_factory=list)
    media: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # id -> (bytes, mime)
    media_downloads: int = 0
    port: int = 0
    _runner: web.AppRunner | None = None
    _count: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def texts(self, to: str | None = None) -> list[str]:
        """The text (or interactive body) of each message sent, in order."""
        out = []
        for m in self.sent:
            if to and m.get("to") != to:
                continue
            if m["type"] == "text":
                out.append(m["text"]["body"])
            elif m["type"] == "interactive":
                out.append(m["interactive"]["body"]["text"])
            else:
                out.append(f"<{m['type']}>")
        return out

    def _authorised(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.token}"

    async def _messages(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return _error(401, 190, "Invalid OAuth access token")
        body = await request.json()
        if self.fail_next:
            status, code = self.fail_next.pop(0)
            return _error(status, code, "fake error")
        if request.match_info["phone_id"] != PHONE_ID or body.get("messaging_product") != (
            "whatsapp"
        ):
            return _error(400, 100, "Invalid parameter")
        if body["type"] == "interactive":
            kind = body["interactive"]["type"]
            action = body["interactive"]["action"]
            if kind == "button" and len(action["buttons"]) > 3:
                return _error(400, 131009, "too many buttons")
            if len(body["interactive"]["body"]["text"]) > 1024:
                return _error(400, 131009, "body too long")
        elif body["type"] == "text" and len(body["text"]["body"]) > 4096:
            return _error(400, 131009, "text too long")
        self._count += 1
        self.sent.append(body)
        wamid = f"wamid.FAKE{self._count}"
        return web.json_response(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": body["to"], "wa_id": body["to"]}],
                "messages": [{"id": wamid}],
            }
        )

    async def _media_url(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return _error(401, 190, "Invalid OAuth access token")
        media_id = request.match_info["media_id"]
        if media_id not in self.media:
            return _error(404, 100, "Unknown media")
        data, mime = self.media[media_id]
        return web.json_response(
            {
                "messaging_product": "whatsapp",
                "url": f"{self.url}/download/{media_id}",
                "mime_type": mime,
                "sha256": hashlib.sha256(data).hexdigest(),
                "file_size": len(data),
                "id": media_id,
            }
        )

    async def _download(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.Response(status=401)
        data, mime = self.media[request.match_info["media_id"]]
        self.media_downloads += 1
        return web.Response(body=data, content_type=mime)

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/v{version}/{phone_id}/messages", self._messages)
        router.add_get("/v{version}/{media_id}", self._media_url)
        router.add_get("/download/{media_id}", self._download)


def _error(status: int, code: int, message: str) -> web.Response:
    error = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "FAKE"}
    return web.json_response({"error": error}, status=status)


def webhook_body(
    messages: list[dict[str, Any]] | None = None,
    statuses: list[dict[str, Any]] | None = None,
    phone_id: str = PHONE_ID,
) -> dict[str, Any]:
    """A webhook body as Meta posts it, for our phone number."""
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550000000", "phone_number_id": phone_id},
    }
    if messages:
        value["contacts"] = [
            {"profile": {"name": "Worker"}, "wa_id": m.get("from")} for m in messages[:1]
        ]
        value["messages"] = messages
    if statuses:
        value["statuses"] = statuses
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": value}]}],
    }


def text_message(wa_id: str, wamid: str, text: str) -> dict[str, Any]:
    return {
        "from": wa_id,
        "id": wamid,
        "timestamp": str(int(time.time())),
        "type": "text",
        "text": {"body": text},
    }


def button_reply(wa_id: str, wamid: str, payload: str, title: str = "x") -> dict[str, Any]:
    return {
        "from": wa_id,
        "id": wamid,
        "timestamp": str(int(time.time())),
        "type": "interactive",
        "interactive": {"type": "button_reply", "button_reply": {"id": payload, "title": title}},
    }


def media_message(
    wa_id: str, wamid: str, kind: str, media_id: str, mime: str, caption: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"id": media_id, "mime_type": mime, "sha256": "x"}
    if caption:
        body["caption"] = caption
    if kind == "audio":
        body["voice"] = True
    return {
        "from": wa_id,
        "id": wamid,
        "timestamp": str(int(time.time())),
        "type": kind,
        kind: body,
    }


def status(wamid: str, state: str, code: int | None = None) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "id": wamid,
        "status": state,
        "timestamp": str(int(time.time())),
        "recipient_id": "6281200000000",
    }
    if code:
        raw["errors"] = [{"code": code, "title": "fake failure"}]
    return raw


def signed(body: dict[str, Any], secret: str) -> tuple[bytes, dict[str, str]]:
    """The raw body and the headers Meta would send with it."""
    raw = json.dumps(body).encode()
    signature = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return raw, {"X-Hub-Signature-256": signature, "Content-Type": "application/json"}
