"""Erasure that erases: the app's tables, Rasa's tracker store, the files on disk.

A worker who confirms /hapus (with the button or typing "ya") leaves no text of hers
anywhere: not in the app's tables (messages, cases, corrections, outbox, audit), not in
Rasa's SQL tracker store, not in the bytes of the SQLite files or their write-ahead logs,
not in the logs; the contact row (her channel id) goes once the confirmation is delivered.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from bot.app import create_app
from bot.keys import SESSIONMAKER
from pmi import erasure, messages, privacy
from pmi.cases import create_case
from pmi.db import create_engine
from pmi.missions import Missions
from pmi.models import (
    Case,
    ErasureRequest,
    InboundMessage,
    IntentCorrection,
    Media,
    OutboundMessage,
)
from pmi.settings import load_settings
from tests.support import Servers, joined, make_settings, say, wait_until


async def test_forget_queues_rasa_and_unlinks_every_case(sessions) -> None:
    missions = Missions.load(load_settings().content.missions_file)
    async with sessions() as s, s.begin():
        contact = await messages.get_or_create_contact(s, "whatsapp", "6281234567890")
        old = contact.public_id
        inbound = await messages.store_inbound(s, contact, "whatsapp", "wa-1", "gaji sy 3 bln")
        assert inbound is not None
        s.add(Media(contact_id=contact.id, inbound_id=inbound.id, kind="photo",
                    mime_type="image/jpeg", provider_ref="m1", storage_key="k" * 32))  # fmt: skip
        s.add(IntentCorrection(inbound_id=inbound.id, intent="file_complaint", text="gaji"))
        case = await create_case(
            s, conversation_id=old, category="unpaid_wages", mission=missions.default,
            description="gaji sy 3 bln", phone="+62 812 3456 7890",
        )  # fmt: skip
        files = await privacy.forget_contact(s, contact)
        assert files == ["k" * 32]
        assert contact.public_id != old and contact.erased_at is not None
        queued = (await s.scalars(select(ErasureRequest.conversation_id))).all()
        assert queued == [old]
        await s.refresh(case)
        assert case.conversation_id is None and case.contact_id is None
        assert case.description is None and case.phone is None
        for model in (InboundMessage, OutboundMessage, Media, IntentCorrection):
            assert await s.scalar(select(func.count()).select_from(model)) == 0


async def test_no_sender_matches_an_erased_workers_case(sessions) -> None:
    from pmi.cases import cases_of_conversation

    missions = Missions.load(load_settings().content.missions_file)
    async with sessions() as s, s.begin():
        contact = await messages.get_or_create_contact(s, "telegram", "555")
        await create_case(s, conversation_id=contact.public_id, category="other",
                          mission=missions.default)  # fmt: skip
        await privacy.forget_contact(s, contact)
        for sender in ("anonymised", "", "None", "null"):
            assert await cases_of_conversation(s, sender) == []


async def test_the_erasure_queue_retries_until_rasa_confirms(sessions) -> None:
    async with sessions() as s, s.begin():
        await erasure.queue(s, "a" * 32)
        request = await erasure.claim(s)
        assert request is not None and request.attempts == 1
        assert await erasure.claim(s) is None  # leased
        await erasure.failed(s, request.id, "rasa away")
        pending = await erasure.pending(s)
        assert pending.count == 1 and pending.last_error == "rasa away"
        await erasure.done(s, request.id)
        assert (await erasure.pending(s)).count == 0


async def test_the_delivered_confirmation_deletes_the_contact_row(sessions) -> None:
    async with sessions() as s, s.begin():
        contact = await messages.get_or_create_contact(s, "telegram", "777")
        await privacy.forget_contact(s, contact)
        await messages.add_outbound(s, contact.id, "Data Anda sudah dihapus.",
                                    kind=messages.ERASURE_DONE)  # fmt: skip
        await messages.take_pending_outbound(s, contact.id)  # delivered (the web chat's way)
        assert await messages.get_contact(s, "telegram", "777") is None


async def test_writing_again_before_the_confirmation_keeps_the_new_conversation(sessions) -> None:
    async with sessions() as s, s.begin():
        contact = await messages.get_or_create_contact(s, "telegram", "778")
        await privacy.forget_contact(s, contact)
        again = await messages.get_or_create_contact(s, "telegram", "778")
        assert again.erased_at is None  # a new conversation: the delivery will not delete it
        await messages.finish_erasure(s, again.id)
        assert await messages.get_contact(s, "telegram", "778") is not None


def _files_with(folder: Path, phrase: bytes) -> list[str]:
    return [str(p) for p in folder.rglob("*") if p.is_file() and phrase in p.read_bytes()]


@pytest.mark.e2e
@pytest.mark.parametrize("confirm", ["/confirm_delete", "ya", "iya", "yes", "ok"])
async def test_no_text_of_the_worker_survives_anywhere(servers: Servers, confirm: str) -> None:
    """End to end on the SQL tracker store on SQLite, as `make run` keeps it."""
    phrase = f"Siti-{confirm.strip('/')}-Wulandari"
    sender = f"erase-{confirm.strip('/')}"
    settings = make_settings(servers.database_url, servers.rasa_url)
    async with TestClient(TestServer(create_app(settings), host="127.0.0.1")) as chat:
        await say(chat, sender, f"tolong saya dikurung majikan di taipei, nama saya {phrase}")
        await say(chat, sender, f"di rumah majikan, jalan {phrase}")
        async with chat.app[SESSIONMAKER]() as s:
            contact = await messages.get_contact(s, "webchat", sender)
            assert contact is not None
            old_id, contact_id = contact.public_id, contact.id
            [case] = (await s.scalars(select(Case).where(Case.contact_id == contact_id))).all()
        asked = await say(chat, sender, "/hapus")
        assert "tidak bisa dibatalkan" in joined(asked)
        done = joined(await say(chat, sender, confirm))
        assert "sudah dihapus" in done

        async def rasa_erased() -> bool:
            async with chat.app[SESSIONMAKER]() as s:
                return await s.scalar(select(func.count()).select_from(ErasureRequest)) == 0

        await wait_until(rasa_erased, timeout=30)
        async with chat.app[SESSIONMAKER]() as s:
            assert await messages.get_contact(s, "webchat", sender) is None  # the row is gone
            for model in (InboundMessage, OutboundMessage):
                count = select(func.count()).select_from(model)
                assert await s.scalar(count.where(model.contact_id == contact_id)) == 0
            anonymised = await s.get(Case, case.id)
            assert anonymised is not None and anonymised.conversation_id is None
            assert (anonymised.category, anonymised.country) == ("emergency", "TW")
    engine = create_engine(f"sqlite:///{servers.tracker_db}")
    async with engine.connect() as conn:
        from sqlalchemy import text

        events = await conn.scalar(
            text("SELECT count(*) FROM events WHERE sender_id = :s"), {"s": old_id}
        )
    await engine.dispose()
    assert events == 0
    needle = phrase.encode()
    database = Path(servers.database_url.removeprefix("sqlite:///"))
    assert _files_with(database.parent, needle) == []  # the app's SQLite and its WAL
    assert _files_with(servers.tracker_db.parent, needle) == []  # Rasa's tracker store
    assert _files_with(servers.logs, needle) == []  # Rasa's and the action server's logs
