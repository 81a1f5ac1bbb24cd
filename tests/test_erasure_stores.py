"""Erasure in each of Rasa's tracker stores the project runs: in memory, and the SQL store on
PostgreSQL (production) — the SQLite SQL store of `make run` is covered by test_erasure.py.

Each test runs a real turn through the relay channel, asks Rasa to erase the conversation
(and to prune old events), and reads the store itself afterwards.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import text

from bot.rasa_client import RasaClient
from devtools.databases import migrate
from devtools.stack import Stack
from pmi.db import create_engine
from tests.scaled import Scaled

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def memory_rasa(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple]:
    """An action server and a Rasa server whose tracker store is in memory."""
    workdir = tmp_path_factory.mktemp("memory-rasa")
    database = f"sqlite:///{workdir / 'actions.db'}"
    migrate(database)
    stack = Stack(workdir, database)
    stack.action_server()
    rasa = stack.rasa("rasa-memory", endpoints=stack.endpoints_file("memory"), api=True)
    stack.start_all()
    try:
        await stack.ready(300)
        yield stack, rasa
    finally:
        stack.stop_all()


async def _user_texts(http: aiohttp.ClientSession, url: str, token: str, sender: str) -> list:
    params = {"token": token, "include_events": "ALL"}
    async with http.get(f"{url}/conversations/{sender}/tracker", params=params) as resp:
        tracker = await resp.json()
    return [e.get("text") for e in tracker.get("events") or [] if e.get("event") == "user"]


async def test_the_in_memory_store_forgets_the_conversation(memory_rasa) -> None:
    stack, rasa = memory_rasa
    sender = secrets.token_hex(16)
    async with aiohttp.ClientSession() as http:
        client = RasaClient(http, rasa.url, 30, stack.rasa_token)
        await client.send(sender, "halo, nama saya Memori-Wati", 1, {"language": "id"})
        assert "halo, nama saya Memori-Wati" in await _user_texts(
            http, rasa.url, stack.rasa_token, sender
        )
        assert await client.forget(sender)
        assert await _user_texts(http, rasa.url, stack.rasa_token, sender) == []
        other = secrets.token_hex(16)
        await client.send(other, "selamat pagi", 2, {"language": "id"})
        assert await client.prune(time.time() + 1) is not None  # everything is "old" now
        assert await _user_texts(http, rasa.url, stack.rasa_token, other) == []


async def test_the_relay_channel_refuses_requests_without_its_token(memory_rasa) -> None:
    _, rasa = memory_rasa
    async with aiohttp.ClientSession() as http:
        for path, body in (
            ("/webhooks/relay/webhook", {"sender": "x", "message": "hi", "metadata": {}}),
            ("/webhooks/relay/erase", {"sender": "x"}),
            ("/webhooks/relay/prune", {"before": 0}),
        ):
            for headers in ({}, {"Authorization": "Bearer wrong"}):
                async with http.post(rasa.url + path, json=body, headers=headers) as resp:
                    assert resp.status == 401, (path, headers)
        async with http.get(rasa.url + "/webhooks/relay/") as resp:
            assert resp.status == 200  # the health check stays open
        async with http.post(rasa.url + "/webhooks/rest/webhook", json={"message": "hi"}) as resp:
            assert resp.status == 404  # Rasa's plain REST channel is not open


async def test_the_action_server_refuses_requests_without_the_shared_secret(memory_rasa) -> None:
    stack, _ = memory_rasa
    actions = stack.services["actions"]
    call = {"next_action": "action_case_status", "sender_id": "anonymised", "tracker": {}}
    async with aiohttp.ClientSession() as http:
        for headers in ({}, {"X-Action-Token": "wrong"}):
            async with http.post(f"{actions.url}/webhook", json=call, headers=headers) as resp:
                assert resp.status == 401
        async with http.get(f"{actions.url}/health") as resp:
            assert resp.status == 200


async def test_the_postgresql_store_deletes_the_events(scaled: Scaled) -> None:
    rasa = scaled.rasas[0]
    sender = secrets.token_hex(16)
    client = RasaClient(scaled.http, rasa.url, 30, scaled.stack.rasa_token)
    await client.send(sender, "tolong, nama saya Postgres-Wati", 1, {"language": "id"})
    engine = create_engine(scaled.database_url)
    count = text("SELECT count(*) FROM events WHERE sender_id = :s")
    try:
        async with engine.connect() as conn:
            assert await conn.scalar(count, {"s": sender}) > 0
        assert await client.forget(sender)
        async with engine.connect() as conn:
            assert await conn.scalar(count, {"s": sender}) == 0
            leftover = await conn.scalar(
                text("SELECT count(*) FROM events WHERE data LIKE '%Postgres-Wati%'")
            )
            assert leftover == 0
    finally:
        await engine.dispose()


def test_production_credentials_open_only_the_apps_channel() -> None:
    import yaml

    root = Path(__file__).resolve().parent.parent
    credentials = yaml.safe_load((root / "rasa_project" / "credentials.yml").read_text())
    assert list(credentials) == ["rasa_project.channels.relay.RelayInput"]
