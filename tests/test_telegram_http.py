"""PTB's HTTP layer on aiohttp (bot/telegram_http.py) against a local server."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from telegram import Bot, InputFile
from telegram.error import NetworkError, TimedOut
from telegram.request import RequestData
from telegram.request._requestparameter import RequestParameter

from bot.telegram_http import AiohttpRequest
from devtools.local_server import serve


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, list[dict]]]:
    """A server that records form posts, answers slowly on /slow, and says ok otherwise."""
    seen: list[dict] = []

    async def record(request: web.Request) -> web.Response:
        form = await request.post()
        seen.append(
            {
                k: (v.file.read(), v.filename) if isinstance(v, web.FileField) else v
                for k, v in form.items()
            }
        )
        return web.json_response({"ok": True, "result": True})

    async def slow(_: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.json_response({"ok": True, "result": True})

    app = web.Application()
    app.router.add_post("/slow", slow)
    app.router.add_post("/{tail:.*}", record)
    runner, port = await serve(app)
    yield f"http://127.0.0.1:{port}", seen
    await runner.cleanup()


async def test_form_fields_and_files_reach_the_server(server) -> None:
    url, seen = server
    request = AiohttpRequest()
    await request.initialize()
    try:
        data = RequestData(
            [
                RequestParameter.from_input("chat_id", 42),
                RequestParameter.from_input(
                    "document", InputFile(b"%PDF-1.4 test", filename="a.pdf")
                ),
            ]
        )
        status, body = await request.do_request(url + "/sendDocument", "POST", data)
        assert status == 200 and b'"ok": true' in body
        status, _ = await request.do_request(
            url + "/sendMessage", "POST", RequestData([RequestParameter.from_input("text", "halo")])
        )
        assert status == 200
    finally:
        await request.shutdown()
    assert seen[0]["chat_id"] == "42"
    name = next(k for k, v in seen[0].items() if isinstance(v, tuple))
    assert seen[0][name] == (b"%PDF-1.4 test", "a.pdf")
    assert seen[1] == {"text": "halo"}


async def test_a_slow_answer_is_timed_out_and_a_closed_port_is_a_network_error(server) -> None:
    url, _ = server
    request = AiohttpRequest(read_timeout=0.2)
    await request.initialize()
    try:
        with pytest.raises(TimedOut):
            await request.do_request(url + "/slow", "POST")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            closed = s.getsockname()[1]  # nothing listens once the socket is closed
        with pytest.raises(NetworkError):
            await request.do_request(f"http://127.0.0.1:{closed}/x", "POST")
    finally:
        await request.shutdown()


async def test_a_bot_sends_through_it(telegram) -> None:
    bot = Bot(telegram.token, base_url=telegram.base_url, request=AiohttpRequest())
    async with bot:
        sent = await bot.send_message(chat_id=7, text="halo")
    assert sent.text == "halo"
    assert any(m.get("text") == "halo" for m in telegram.sent)
