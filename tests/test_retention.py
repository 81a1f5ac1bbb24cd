"""Retention on SQLite and PostgreSQL: old transcripts deleted, old closed cases anonymised,
open cases keep their conversation, statistics survive."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from pmi.cases import add_event, new_reference
from pmi.db import utcnow
from pmi.models import (
    Case,
    CaseEvent,
    CaseStatus,
    Contact,
    ErasureRequest,
    InboundMessage,
    InboundStatus,
    OutboundMessage,
    OutboundStatus,
)
from pmi.retention import _LOCK, ERASED_GRACE, apply_retention, run_retention
from pmi.settings import RetentionSettings
from tests.support import Database

SETTINGS = RetentionSettings(transcript_days=180, closed_case_days=365)
NOW = utcnow()
OLD = NOW - timedelta(days=200)
ANCIENT = NOW - timedelta(days=400)


async def _contact(s: AsyncSession, name: str, last: object = OLD) -> Contact:
    contact = Contact(channel="webchat", channel_user_id=name, created_at=OLD, last_inbound_at=last)
    s.add(contact)
    await s.flush()
    return contact


async def _message(
    s: AsyncSession, contact: Contact, when: object, status: str = InboundStatus.DONE
) -> InboundMessage:
    message = InboundMessage(
        contact_id=contact.id,
        channel="webchat",
        external_id=f"{contact.channel_user_id}-{when}-{status}",
        text="nomor saya 0812 3456 7890",
        status=status,
        received_at=when,
    )
    s.add(message)
    await s.flush()
    s.add(
        OutboundMessage(
            contact_id=contact.id,
            inbound_id=message.id,
            text="balasan",
            status=OutboundStatus.SENT,
            created_at=when,
        )
    )
    await s.flush()
    return message


async def _case(s: AsyncSession, contact: Contact, status: str, updated: object) -> Case:
    case = Case(
        reference=new_reference(),
        contact_id=contact.id,
        conversation_id=contact.public_id,
        category="unpaid_wages",
        country="MY",
        city="Johor Bahru",
        employer="Tan Sdn Bhd",
        description="gaji tidak dibayar enam bulan",
        phone="+60123456789",
        mission_code="KBRI-KUALA-LUMPUR",
        status=status,
        created_at=updated,
        updated_at=updated,
    )
    s.add(case)
    await s.flush()
    await add_event(s, case, "note", {"text": "ditelepon, majikan Pak Tan"}, actor="staff:x")
    return case


async def _count(s: AsyncSession, model: type, **where: object) -> int:
    query = select(func.count()).select_from(model)
    for key, value in where.items():
        query = query.where(getattr(model, key) == value)
    return await s.scalar(query) or 0


async def test_retention_round(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as s, s.begin():
        recent = await _contact(s, "recent", NOW)
        await _message(s, recent, OLD)  # old messages of an active worker: deleted
        keep = await _message(s, recent, NOW - timedelta(days=10))
        stuck = await _message(s, recent, OLD, InboundStatus.PENDING)  # never lost
        open_worker = await _contact(s, "open-case")
        open_message = await _message(s, open_worker, OLD)
        open_case = await _case(s, open_worker, CaseStatus.IN_PROGRESS, ANCIENT)
        gone = await _contact(s, "inactive")
        await _message(s, gone, OLD)
        old_closed = await _case(s, gone, CaseStatus.CLOSED, ANCIENT)
        new_closed = await _case(s, gone, CaseStatus.RESOLVED, NOW - timedelta(days=30))
        ids = (recent.id, open_worker.id, gone.id)
        case_ids = (open_case.id, old_closed.id, new_closed.id)

        report = await apply_retention(s, SETTINGS, NOW)

        assert (report.inbound_deleted, report.outbound_deleted) == (2, 3)
        assert (report.contacts_deleted, report.cases_anonymised) == (1, 1)
        # The deleted worker's Rasa conversation is queued for deletion there too.
        queued = await s.scalars(select(ErasureRequest.conversation_id))
        assert list(queued) == [gone.public_id]
        remaining = set(await s.scalars(select(InboundMessage.id)))
        assert {keep.id, stuck.id, open_message.id} <= remaining
        assert await _count(s, InboundMessage, contact_id=ids[0]) == 2
        assert await _count(s, Contact, id=ids[2]) == 0
        s.expire_all()
        # The open case keeps everything, including its conversation.
        open_case = await s.get(Case, case_ids[0])
        assert open_case.description and open_case.contact_id == ids[1]
        # The old closed case is anonymised; statistics survive.
        old_closed = await s.get(Case, case_ids[1])
        assert old_closed.conversation_id is None and old_closed.contact_id is None
        assert (old_closed.city, old_closed.employer, old_closed.phone) == (None, None, None)
        assert (old_closed.category, old_closed.country, old_closed.status) == (
            "unpaid_wages",
            "MY",
            CaseStatus.CLOSED,
        )
        notes = await s.scalars(select(CaseEvent.detail).where(CaseEvent.case_id == case_ids[1]))
        assert not any("text" in d for d in notes)
        # A recently closed case keeps its data until its own period ends.
        new_closed = await s.get(Case, case_ids[2])
        assert new_closed.description is not None and new_closed.contact_id is None
        again = await apply_retention(s, SETTINGS, NOW)
        assert again.cases_anonymised == 0 and again.inbound_deleted == 0
        later = await apply_retention(s, SETTINGS, NOW + timedelta(days=400))
        assert later.cases_anonymised == 1  # the recently closed one, a year on


async def test_run_retention_prunes_rasa_and_deletes_undelivered_erasures(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as s, s.begin():
        erased = await _contact(s, "erased-undelivered", last=NOW)
        erased.erased_at = NOW - ERASED_GRACE - timedelta(minutes=1)
        erased_id = erased.id
    pruned: list[float] = []

    async def prune(before: float) -> int:
        pruned.append(before)
        return 0

    await run_retention(sessions, SETTINGS, prune, NOW)
    assert pruned == [(NOW - timedelta(days=SETTINGS.transcript_days)).timestamp()]
    async with sessions() as s:
        assert await s.get(Contact, erased_id) is None


async def test_only_one_process_runs_a_round_on_postgresql(database: Database) -> None:
    if database.engine.dialect.name != "postgresql":
        pytest.skip("SQLite's write lock serialises rounds on its own")
    async with database.engine.connect() as holder, database.engine.connect() as other:
        await holder.begin()
        assert await holder.scalar(_LOCK)  # another process is in a round
        await other.begin()
        report = await apply_retention(AsyncSession(bind=other), SETTINGS, NOW)
        assert report.skipped
        await other.rollback()
        await holder.rollback()
    async with database.engine.connect() as conn:
        await conn.begin()
        assert await conn.scalar(_LOCK)  # released with the transaction
        assert (await conn.scalar(text("SELECT 1"))) == 1
        await conn.rollback()
