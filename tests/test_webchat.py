"""The web chat API: input validation and the holding reply when Rasa is down.

These tests run the real app on 127.0.0.1; Rasa is pointed at a closed port, so
every accepted message must be stored and answered with the holding reply.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.app import create_app
from bot.keys import SESSIONMAKER
from pmi.models import InboundMessage, InboundStatus
from tests.conftest import free_port, make_settings


@pytest.fixture
async def client(app_db: str) -> AsyncIterator[TestClient]:
    # Nothing listens on this port: Rasa is "down".
    app = create_app(make_settings(app_db, f"http://127.0.0.1:{free_port()}"))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


async def _inbound(client: TestClient) -> list[InboundMessage]:
    async with client.app[SESSIONMAKER]() as s:
        return list(await s.scalars(select(InboundMessage).order_by(InboundMessage.id)))


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"sender": "u1"}', "'text'"),
        (b'{"sender": "u1", "text": 5}', "'text'"),
        (b'{"sender": "u1", "text": "   "}', "empty"),
        (b'{"sender": "", "text": "halo"}', "'sender'"),
        (b'{"sender": "<script>", "text": "halo"}', "'sender'"),
        (b'{"sender": "u1", "text": "halo", "id": "../x y"}', "'id'"),
        (b'{"sender": "u1", "text": "' + b"a" * 5000 + b'"}', "at most"),
    ],
)
async def test_bad_input_gets_a_clear_400_and_nothing_stored(client, body, reason) -> None:
    resp = await client.post("/api/chat", data=body, headers={"Content-Type": "application/json"})
    assert resp.status == 400
    assert reason in (await resp.json())["error"]
    assert await _inbound(client) == []


async def test_oversized_body_is_refused(client) -> None:
    resp = await client.post("/api/chat", data=b"x" * (200 * 1024))
    assert resp.status == 413
    assert await _inbound(client) == []


async def test_rasa_down_gives_one_holding_reply_and_keeps_messages(client) -> None:
    first = await client.post("/api/chat", json={"sender": "w1", "text": "halo", "id": "a"})
    second = await client.post("/api/chat", json={"sender": "w1", "text": "tolong", "id": "b"})
    replies_1 = (await first.json())["messages"]
    replies_2 = (await second.json())["messages"]
    assert first.status == second.status == 200
    assert len(replies_1) == 1 and "sudah kami terima" in replies_1[0]["text"]
    assert replies_2 == []  # one holding reply per outage, not one per message
    stored = await _inbound(client)
    assert [(m.text, m.status) for m in stored] == [
        ("halo", InboundStatus.PENDING),
        ("tolong", InboundStatus.PENDING),
    ]


async def test_duplicate_client_id_is_stored_once(client) -> None:
    for _ in range(3):
        resp = await client.post("/api/chat", json={"sender": "w2", "text": "halo", "id": "same"})
        assert resp.status == 200
    assert len(await _inbound(client)) == 1


async def test_page_and_health(client) -> None:
    page = await client.get("/")
    assert page.status == 200
    assert "/api/chat" in await page.text()
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/readyz")).status == 200
