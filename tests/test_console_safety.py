"""The console and a worker who said it is not safe to write to her chat."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.keys import SESSIONMAKER
from pmi import announcements, messages, safety
from pmi.models import Announcement, AuditEntry, Contact, InboundMessage, OutboundMessage
from tests.console_helpers import console_client, csrf_of, login, new_case


@pytest.fixture
async def client(app_db: str) -> AsyncIterator[TestClient]:
    async with console_client(app_db) as client:
        yield client


async def _unsafe_case(client: TestClient):  # type: ignore[no-untyped-def]
    case = await new_case(client, "MY", "Shah Alam", safe_to_reply="no", safe_contact="none")
    async with client.app[SESSIONMAKER]() as s, s.begin():
        contact = await s.scalar(select(Contact).where(Contact.public_id == case.conversation_id))
        assert contact is not None
        case.contact_id = contact.id
        await s.merge(case)
        await safety.mark_unsafe(s, contact)
        await announcements.set_subscription(s, contact, True, "", {})
    return case, contact


async def _outbox(client: TestClient, contact_id: int) -> list[OutboundMessage]:
    async with client.app[SESSIONMAKER]() as s:
        rows = await s.scalars(
            select(OutboundMessage)
            .where(OutboundMessage.contact_id == contact_id)
            .order_by(OutboundMessage.id)
        )
        return list(rows)


async def test_status_changes_staff_messages_and_announcements_are_held(client) -> None:
    case, contact = await _unsafe_case(client)
    await login(client, "operator1")
    page = f"/console/cases/{case.reference}"
    html = await (await client.get(page)).text()
    assert "TIDAK AMAN" in html and "Tidak ada cara aman untuk menghubunginya" in html
    token = await csrf_of(client, page)
    await client.post(f"{page}/acknowledge", data={"csrf": token})
    await client.post(f"{page}/message", data={"csrf": token, "text": "Kami akan bantu."})
    note = Announcement(texts={"id": "Bursa kerja resmi besok"}, country=None)
    held = await _outbox(client, contact.id)
    assert [m.kind for m in held] == ["case", "staff"]
    assert {m.status for m in held} == {"held"}
    assert "2 pesan ditahan" in await (await client.get(page)).text()
    async with client.app[SESSIONMAKER]() as s:
        audience = await announcements.audience(s, note, "id")
    assert contact.id not in {c.id for c in audience}  # no announcement at all


async def test_an_override_is_explicit_and_audited(client) -> None:
    case, contact = await _unsafe_case(client)
    await login(client, "operator1")
    page = f"/console/cases/{case.reference}"
    token = await csrf_of(client, page)
    await client.post(f"{page}/message", data={"csrf": token, "text": "Held one."})
    sent = {"csrf": token, "text": "Sent anyway.", "override": "1"}
    assert (await client.post(f"{page}/message", data=sent)).status == 200
    statuses = {m.text: m.status for m in await _outbox(client, contact.id)}
    assert statuses == {"Held one.": "held", "Sent anyway.": "pending"}
    refused = await client.post(f"{page}/release_held", data={"csrf": token})
    assert refused.status == 400  # the risk must be acknowledged
    released = await client.post(f"{page}/release_held", data={"csrf": token, "override": "1"})
    assert released.status == 200
    assert {m.status for m in await _outbox(client, contact.id)} == {"pending"}
    async with client.app[SESSIONMAKER]() as s:
        audits = (
            await s.scalars(select(AuditEntry).where(AuditEntry.action == "unsafe_override"))
        ).all()
    assert [a.detail["what"] for a in audits] == ["message", "held"]
    assert {a.target for a in audits} == {case.reference}


async def test_possible_danger_conversations_are_flagged_for_operators(client) -> None:
    async with client.app[SESSIONMAKER]() as s, s.begin():
        contact = await messages.get_or_create_contact(s, "telegram", "flagged-1")
        stored = await messages.store_inbound(s, contact, "telegram", "f-1", "tolong saya kak")
        assert stored is not None
        await messages.finish_inbound(s, stored.id, "id", "possible_danger", 1.0)
    await login(client, "operator1")
    html = await (await client.get("/console/conversations")).text()
    assert "Mungkin dalam bahaya" in html and "tolong saya kak" in html
    assert contact.public_id[:8] in html
    async with client.app[SESSIONMAKER]() as s:
        assert await s.get(InboundMessage, stored.id) is not None
