"""End to end: the app, the real Rasa server with the trained model, the real action server."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import create_app
from pmi import agencies
from pmi.db import create_engine, create_sessionmaker
from tests.conftest import free_port, joined, make_settings, say, wait_until

pytestmark = pytest.mark.e2e


async def test_indonesian_greeting(chat) -> None:
    replies = await say(chat, "e2e-id", "halo")
    assert replies, "no reply"
    assert "Halo! Saya asisten helpdesk Pekerja Migran Indonesia" in replies[0]["text"]
    assert {b["payload"] for b in replies[0]["buttons"]} >= {"/help"}


async def test_english_greeting(chat) -> None:
    replies = await say(chat, "e2e-en", "hello, good morning")
    assert replies
    assert replies[0]["text"].startswith("Hello! I am the helpdesk assistant")


async def test_knowledge_answer_comes_with_its_source(chat) -> None:
    replies = await say(chat, "e2e-kb", "gmn cara daftar kerja ke luar negeri yg resmi")
    text = "\n".join(r["text"] for r in replies)
    assert "Sumber:" in text and "http" in text


async def test_embassy_question_asks_for_the_country_then_answers(chat) -> None:
    asked = await say(chat, "e2e-emb", "nomor kbri brp ya")
    assert any(b["payload"].startswith("/inform") for r in asked for b in r["buttons"])
    answered = await say(chat, "e2e-emb", '/inform{"country": "MY"}')
    assert "Kuala Lumpur" in "\n".join(r["text"] for r in answered)


class _Gate:
    """A TCP forwarder in front of Rasa that the test can close and reopen."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.server: asyncio.Server | None = None

    async def _pipe(self, reader, writer) -> None:  # type: ignore[no-untyped-def]
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _handle(self, reader, writer) -> None:  # type: ignore[no-untyped-def]
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def open(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def close(self) -> None:
        if self.server:
            self.server.close()
            await self.server.wait_closed()
            self.server = None


async def test_messages_sent_while_rasa_is_down_are_answered_in_order(servers) -> None:
    gate = _Gate(int(servers.rasa_url.rsplit(":", 1)[1]))
    app = create_app(make_settings(servers.database_url, f"http://127.0.0.1:{gate.port}"))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        held = await say(client, "e2e-down", "halo")
        assert "sudah kami terima" in held[0]["text"]
        assert await say(client, "e2e-down", "makasih ya") == []
        await gate.open()
        later: list[dict] = []

        async def answered() -> bool:
            resp = await client.get("/api/chat/updates", params={"sender": "e2e-down"})
            later.extend((await resp.json())["messages"])
            return len(later) >= 2

        try:
            await wait_until(answered, timeout=30)
        finally:
            await gate.close()
    assert later[0]["text"].startswith("Halo!")
    assert "Sama-sama" in later[1]["text"]


async def test_agency_named_by_the_worker_is_checked_against_the_imported_registry(
    chat, servers
) -> None:
    engine = create_engine(servers.database_url)
    try:
        async with create_sessionmaker(engine)() as s, s.begin():
            rows = agencies.parse_registry(b"nama_perusahaan\nPT. Cahaya Bintang Timur\n")
            record = await agencies.replace_registry(s, rows, "registry.csv")
    finally:
        await engine.dispose()
    date = record.imported_at.strftime("%d-%m-%Y")
    listed = joined(await say(chat, "agency-1", "pt cahaya bintang timur itu resmi gak ya?"))
    assert "ada di daftar resmi P3MI" in listed and date in listed
    unknown = joined(await say(chat, "agency-2", "PT Berkah Sentosa Jaya resmi gak ya min?"))
    assert "tidak saya temukan di daftar resmi" in unknown and date in unknown
