"""A worker deletes their data from the chat (/hapus): messages gone, cases anonymised."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from bot.app import create_app
from bot.keys import SESSIONMAKER
from pmi import messages
from pmi.models import Case, InboundMessage, OutboundMessage
from tests.conftest import Servers, joined, make_settings, say

pytestmark = pytest.mark.e2e


async def test_worker_deletes_their_data_after_confirming(servers: Servers) -> None:
    settings = make_settings(servers.database_url, servers.rasa_url)
    settings.rasa.token = servers.rasa_token
    sender = "privacy-worker"
    async with TestClient(TestServer(create_app(settings), host="127.0.0.1")) as chat:
        await say(chat, sender, "tolong saya dikurung majikan di taipei, nama saya Siti")
        async with chat.app[SESSIONMAKER]() as s:
            contact = await messages.get_contact(s, "webchat", sender)
            assert contact is not None
            old_id, contact_id = contact.public_id, contact.id
            [case] = (await s.scalars(select(Case).where(Case.contact_id == contact_id))).all()
        asked = (await say(chat, sender, "/hapus"))[0]
        assert "tidak bisa dibatalkan" in asked["text"]
        assert [b["payload"] for b in asked["buttons"]] == ["/confirm_delete", "/cancel_delete"]
        assert "tidak dihapus" in joined(await say(chat, sender, "/cancel_delete"))
        done = joined(await say(chat, sender, "/confirm_delete"))
        assert "sudah dihapus" in done
        async with chat.app[SESSIONMAKER]() as s:
            inbound = await s.scalar(
                select(func.count()).where(InboundMessage.contact_id == contact_id)
            )
            outbound = (
                await s.scalars(
                    select(OutboundMessage.text).where(OutboundMessage.contact_id == contact_id)
                )
            ).all()
            anonymised = await s.get(Case, case.id)
            contact = await messages.get_contact(s, "webchat", sender)
        assert inbound == 0
        assert outbound == [done]  # only the confirmation, already delivered
        assert anonymised is not None
        assert anonymised.description is None and anonymised.contact_id is None
        assert anonymised.conversation_id == "anonymised"
        assert (anonymised.category, anonymised.country, anonymised.priority) == (
            "emergency",
            "TW",
            "urgent",
        )
        assert contact is not None and contact.public_id != old_id
        # Rasa's copy of the conversation is erased too.
        async with aiohttp.ClientSession() as http:
            url = f"{servers.rasa_url}/conversations/{old_id}/tracker"
            async with http.get(url, params={"token": servers.rasa_token}) as resp:
                tracker = await resp.json()
        texts = [e.get("text") for e in tracker.get("events", []) if e.get("event") == "user"]
        assert not any("Siti" in (t or "") for t in texts)
