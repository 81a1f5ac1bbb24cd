"""The relay channel against the real Rasa and action servers: idempotent, all-or-nothing turns."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import aiohttp
import pytest
from sqlalchemy import select

from bot.rasa_client import RasaClient, RasaUnavailable
from pmi.db import create_engine, create_sessionmaker
from pmi.models import InboundMessage
from tests.support import Servers, say, updates, wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture
async def rasa(servers: Servers) -> AsyncIterator[RasaClient]:
    async with aiohttp.ClientSession() as http:
        yield RasaClient(http, servers.rasa_url, 30, servers.rasa_token)


async def _user_events(servers: Servers, sender: str) -> list[dict]:
    url = f"{servers.rasa_url}/conversations/{sender}/tracker"
    async with (
        aiohttp.ClientSession() as http,
        http.get(url, params={"token": servers.rasa_token}) as resp,
    ):
        tracker = await resp.json()
    return [e for e in tracker["events"] if e["event"] == "user"]


def _texts(turn) -> str:  # type: ignore[no-untyped-def]
    return "\n".join(r.text for r in turn.replies)


async def test_a_turn_reports_the_intent_and_its_confidence(rasa: RasaClient) -> None:
    turn = await rasa.send(f"t-{secrets.token_hex(4)}", "halo min", 1, {"language": "id"})
    assert turn.intent == "greet"
    assert turn.confidence is not None and 0.5 < turn.confidence <= 1.0
    assert turn.replies and not turn.replayed


async def test_asking_again_for_the_same_message_replays_the_turn(
    rasa: RasaClient, servers: Servers
) -> None:
    sender = f"t-{secrets.token_hex(4)}"
    first = await rasa.send(sender, "nomor kbri malaysia brp", 7, {"language": "id"})
    again = await rasa.send(sender, "nomor kbri malaysia brp", 7, {"language": "id"})
    assert "Kuala Lumpur" in _texts(first)
    assert again.replayed and _texts(again) == _texts(first)
    assert (again.intent, again.confidence) == (first.intent, first.confidence)
    assert len(await _user_events(servers, sender)) == 1
    other = await rasa.send(sender, "makasih", 8, {"language": "id"})
    assert not other.replayed and len(await _user_events(servers, sender)) == 2


async def test_a_turn_whose_action_fails_is_not_kept_and_runs_whole_on_retry(
    rasa: RasaClient, servers: Servers
) -> None:
    sender = f"t-{secrets.token_hex(4)}"
    servers.action_gate.close()
    try:
        with pytest.raises(RasaUnavailable, match="503"):
            await rasa.send(sender, "nomor kbri malaysia brp", 1, {"language": "id"})
        assert await _user_events(servers, sender) == []
    finally:
        servers.action_gate.open()
    turn = await rasa.send(sender, "nomor kbri malaysia brp", 1, {"language": "id"})
    assert "Kuala Lumpur" in _texts(turn) and not turn.replayed
    assert len(await _user_events(servers, sender)) == 1


async def test_the_transcript_keeps_what_rasa_understood(chat, servers: Servers) -> None:
    await say(chat, "intent-1", "halo min")
    engine = create_engine(servers.database_url)
    try:
        async with create_sessionmaker(engine)() as s:
            row = (
                await s.execute(
                    select(InboundMessage)
                    .where(InboundMessage.text == "halo min")
                    .order_by(InboundMessage.id.desc())
                )
            ).scalar()
    finally:
        await engine.dispose()
    assert row is not None and row.intent == "greet" and (row.confidence or 0) > 0.5


async def test_worker_gets_the_whole_answer_once_the_action_server_is_back(
    chat, servers: Servers
) -> None:
    servers.action_gate.close()
    try:
        held = await say(chat, "action-down", "nomor kbri malaysia brp")
        assert "sudah kami terima" in held[0]["text"]
    finally:
        servers.action_gate.open()
    later: list[dict] = []

    async def answered() -> bool:
        later.extend(await updates(chat, "action-down"))
        return bool(later)

    await wait_until(answered, timeout=30)
    assert "Kuala Lumpur" in "\n".join(m["text"] for m in later)


async def test_a_turn_the_app_gave_up_on_is_finished_and_replayed_not_run_twice(
    servers: Servers,
) -> None:
    sender = f"t-{secrets.token_hex(4)}"
    servers.action_gate.delay = 2.0  # the action server is slow ...
    try:
        async with aiohttp.ClientSession() as http:
            impatient = RasaClient(http, servers.rasa_url, 0.5, servers.rasa_token)
            with pytest.raises(RasaUnavailable):  # ... and the app stops waiting
                await impatient.send(sender, "nomor kbri malaysia brp", 3, {"language": "id"})
    finally:
        servers.action_gate.delay = 0.0
    async with aiohttp.ClientSession() as http:
        client = RasaClient(http, servers.rasa_url, 30, servers.rasa_token)
        turn = await client.send(sender, "nomor kbri malaysia brp", 3, {"language": "id"})
    assert turn.replayed and "Kuala Lumpur" in _texts(turn)
    url = f"{servers.rasa_url}/conversations/{sender}/tracker"
    async with (
        aiohttp.ClientSession() as http,
        http.get(url, params={"token": servers.rasa_token}) as resp,
    ):
        events = (await resp.json())["events"]
    actions = [e["name"] for e in events if e["event"] == "action"]
    assert actions.count("action_answer_knowledge") == 1  # the action ran once
