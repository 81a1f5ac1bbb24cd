"""Rasa killed in the middle of a form: with the SQL tracker store on SQLite (`make run`),
the restarted server continues the form where the worker was."""

from __future__ import annotations

import asyncio
import secrets

import aiohttp
import pytest

from bot.rasa_client import RasaClient
from devtools.databases import migrate
from devtools.stack import Stack

pytestmark = pytest.mark.e2e


def _text(turn) -> str:  # type: ignore[no-untyped-def]
    return "\n".join(r.text for r in turn.replies)


async def test_a_half_filled_complaint_survives_a_rasa_kill(tmp_path) -> None:
    database = f"sqlite:///{tmp_path / 'app.db'}"
    migrate(database)
    stack = Stack(tmp_path, database)
    stack.action_server()
    rasa = stack.rasa()  # rasa_project/endpoints.yml: SQLite tracker store in tmp_path
    stack.start_all()
    sender = secrets.token_hex(16)
    try:
        await stack.ready(300)
        async with aiohttp.ClientSession() as http:
            client = RasaClient(http, rasa.url, 60, stack.rasa_token)
            meta = {"language": "id"}
            assert "Apa masalahnya?" in _text(await client.send(sender, "sy mau lapor", 1, meta))
            assert "negara dan kota mana" in _text(await client.send(sender, "1", 2, meta))
            await asyncio.to_thread(rasa.kill)  # SIGKILL: nothing is flushed on the way out
            await asyncio.to_thread(rasa.restart, wait=True, timeout=300)
            asked = _text(await client.send(sender, "Malaysia", 3, meta))
            assert "Di kota atau daerah mana?" in asked  # the next question of the same form
            assert (tmp_path / "rasa-tracker.db").stat().st_mode & 0o077 == 0  # owner only
    finally:
        stack.stop_all()
