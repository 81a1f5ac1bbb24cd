"""A local fake of the Telegram Bot API, for the real python-telegram-bot library.

Point `Bot(token, base_url=fake.base_url)` at it. It records every sent message and
can be told to answer the next calls with 429 (retry_after) or a 500.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from devtools.local_server import LocalServer


@dataclass
class FakeTelegram(LocalServer):
    token: str = "123456:TEST-TOKEN"  # noqa: S105 - the fake's own token
    sent: list[dict[str, Any]] = field(default_factory=list)
    fail_next: list[int] = field(default_factory=list)  # HTTP statuses to answer next
    updates: list[dict[str, Any]] = field(default_factory=list)  # served by getUpdates
    calls: list[str] = field(default_factory=list)
    delay: float = 0.0  # seconds to wait before answering sendMessage (a slow API)
    # Fault injection: awaited for each sendMessage; may sleep (a slow API) and returns an
    # HTTP status to refuse the message with (5xx, 429), or None to accept it.
    send_fault: Callable[[dict[str, Any]], Awaitable[int | None]] | None = None
    # called with each sent message's parameters (the benchmark's load generator listens)
    on_send: list[Callable[[dict[str, Any]], None]] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)  # file_id -> bytes (getFile)
    port: int = 0
    _runner: web.AppRunner | None = None
    _message_id: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    async def _handle(self, request: web.Request) -> web.Response:
        token, method = request.match_info["token"], request.match_info["method"]
        if token != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        if request.content_type == "application/json":
            params = await request.json()
        else:
            params = dict(await request.post())
        if self.fail_next:
            return _error(self.fail_next.pop(0))
        self.calls.append(method)
        handler = {
            "getUpdates": self._get_updates,
            "getFile": self._get_file,
            "getMe": self._get_me,
            "sendMessage": self._send_message,
        }.get(method)
        if handler is None:
            return web.json_response({"ok": True, "result": True})
        return await handler(params)

    async def _get_updates(self, params: dict[str, Any]) -> web.Response:
        offset = int(params.get("offset") or 0)
        pending = [u for u in self.updates if u["update_id"] >= offset]
        if not pending:
            await asyncio.sleep(0.2)
        return web.json_response({"ok": True, "result": pending})

    async def _get_file(self, params: dict[str, Any]) -> web.Response:
        file_id = str(params.get("file_id"))
        if file_id not in self.files:
            return _error(400)
        result = {
            "file_id": file_id,
            "file_unique_id": f"u-{file_id}",
            "file_size": len(self.files[file_id]),
            "file_path": f"documents/{file_id}",
        }
        return web.json_response({"ok": True, "result": result})

    async def _get_me(self, params: dict[str, Any]) -> web.Response:
        me = {"id": 123456, "is_bot": True, "first_name": "PMI", "username": "pmi_bot"}
        return web.json_response({"ok": True, "result": me})

    async def _send_message(self, params: dict[str, Any]) -> web.Response:
        if self.send_fault is not None and (status := await self.send_fault(params)):
            return _error(status)
        if self.delay:
            await asyncio.sleep(self.delay)
        self._message_id += 1
        self.sent.append(params)
        for listener in self.on_send:
            listener(params)
        markup = params.get("reply_markup")
        if isinstance(markup, str):
            params["reply_markup"] = json.loads(markup)
        chat = {"id": int(params["chat_id"]), "type": "private"}
        result = {
            "message_id": self._message_id,
            "date": 0,
            "chat": chat,
            "text": params["text"],
        }
        return web.json_response({"ok": True, "result": result})

    async def _file(self, request: web.Request) -> web.Response:
        file_id = request.match_info["path"].rpartition("/")[2]
        if request.match_info["token"] != self.token or file_id not in self.files:
            return web.Response(status=404)
        return web.Response(body=self.files[file_id])

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/bot{token}/{method}", self._handle)
        router.add_get("/file/bot{token}/{path:.+}", self._file)


def _error(status: int) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": "fake error"}
    if status == 429:
        body["parameters"] = {"retry_after": 1}
    return web.json_response(body, status=status)


def text_update(update_id: int, chat_id: int, text: str, language: str = "id") -> dict[str, Any]:
    """A Bot API update carrying a text message from a private chat."""
    user = {"id": chat_id, "is_bot": False, "first_name": "Worker", "language_code": language}
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 0,
            "chat": {"id": chat_id, "type": "private"},
            "from": user,
            "text": text,
        },
    }


def button_update(update_id: int, chat_id: int, data: str) -> dict[str, Any]:
    """A Bot API update for a pressed inline-keyboard button."""
    user = {"id": chat_id, "is_bot": False, "first_name": "Worker"}
    message = {"message_id": 1, "date": 0, "chat": {"id": chat_id, "type": "private"}}
    return {
        "update_id": update_id,
        "callback_query": {
            "id": str(update_id),
            "from": user,
            "chat_instance": "x",
            "message": message,
            "data": data,
        },
    }


def photo_update(update_id: int, chat_id: int, file_id: str, caption: str | None = None) -> dict:
    """A Bot API update carrying a photo (two sizes, as Telegram sends them)."""
    sizes = [
        {"file_id": f"{file_id}-small", "file_unique_id": "s", "width": 90, "height": 90},
        {"file_id": file_id, "file_unique_id": "l", "width": 800, "height": 800},
    ]
    message: dict[str, Any] = {
        "message_id": update_id,
        "date": 0,
        "chat": {"id": chat_id, "type": "private"},
        "from": {"id": chat_id, "is_bot": False, "first_name": "Worker"},
        "photo": sizes,
    }
    if caption:
        message["caption"] = caption
    return {"update_id": update_id, "message": message}
