"""The daily overdue list: one message per mission with overdue cases, to the mission's own
staff chat (or the shared one), without personal data, once a day even when several app
processes try at the same moment; and alerts routed to a mission's own chat."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import async_sessionmaker

from bot.alerts import AlertService
from pmi import cases, digests, messages
from pmi.models import Case, Digest, Priority
from tests.alert_helpers import alert_service

SHARED_CHAT, KL_CHAT = "-100777", "-100888"
KL, JB = "KBRI-KUALA-LUMPUR", "KJRI-JOHOR-BAHRU"
# A Wednesday, 02:00 UTC: after the default digest hour (01:00 UTC).
NOW = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)


@pytest.fixture
async def service(sessions, telegram) -> AsyncIterator[AlertService]:
    def configure(settings) -> None:  # type: ignore[no-untyped-def]
        settings.alerts.staff_telegram_chat_id = SHARED_CHAT
        settings.alerts.mission_chats = {KL: KL_CHAT}

    async with alert_service(sessions, telegram, configure) as service:
        yield service


async def _case(sessions, service, city: str, age: timedelta, **kw) -> Case:  # type: ignore[no-untyped-def]
    async with sessions() as s, s.begin():
        contact = await messages.get_or_create_contact(s, "telegram", secrets.token_hex(4))
        case = await cases.create_case(
            s,
            conversation_id=contact.public_id,
            category="unpaid_wages",
            mission=service._missions.route("MY", city),
            country="MY",
            city=city,
            employer="Tan Ah Kow",
            description="gaji 4 bulan belum dibayar, nama saya Siti",
            **kw,
        )
        case.created_at = NOW - age
        return case


async def test_each_mission_gets_its_overdue_cases_once_a_day_without_personal_data(
    sessions, service, telegram
) -> None:
    old = await _case(sessions, service, "Kuala Lumpur", timedelta(days=10))
    urgent = await _case(
        sessions, service, "Kuala Lumpur", timedelta(hours=5), priority=Priority.URGENT
    )
    await _case(sessions, service, "Kuala Lumpur", timedelta(hours=1))  # not due yet
    johor = await _case(sessions, service, "Johor Bahru", timedelta(days=6))
    await service.outbox.deliver()  # the new-case alerts, out of the way
    telegram.sent.clear()
    assert await service.send_overdue_digests(NOW) == 2
    assert await service.outbox.deliver() == 2
    by_chat = {str(m["chat_id"]): m["text"] for m in telegram.sent}
    assert set(by_chat) == {KL_CHAT, SHARED_CHAT}
    kl, jb = by_chat[KL_CHAT], by_chat[SHARED_CHAT]
    assert "KBRI Kuala Lumpur" in kl and ": 2 kasus" in kl and johor.reference not in kl
    assert kl.index(old.reference) < kl.index(urgent.reference)  # the latest first
    assert "terlambat 8 hari" in kl and johor.reference in jb and "KJRI Johor Bahru" in jb
    for text in (kl, jb):
        for private in ("Tan Ah Kow", "Siti", "gaji 4 bulan", "Kuala Lumpur/", "Johor Bahru/"):
            assert private not in text
    assert await service.send_overdue_digests(NOW + timedelta(hours=3)) == 0  # same day
    assert await service.send_overdue_digests(NOW + timedelta(days=1)) == 2  # the next day


async def test_no_digest_before_its_hour_or_without_overdue_cases(sessions, service) -> None:
    await _case(sessions, service, "Kuala Lumpur", timedelta(days=10))
    assert await service.send_overdue_digests(NOW.replace(hour=0)) == 0
    async with sessions() as s:
        assert (
            await digests.overdue_by_mission(
                s, service._settings.deadlines, NOW.replace(year=2026, month=11, day=1)
            )
            == {}
        )


async def test_an_alert_goes_to_the_mission_s_own_chat(sessions, service, telegram) -> None:
    await _case(sessions, service, "Kuala Lumpur", timedelta(0), priority=Priority.URGENT)
    await service.deliver_pending()
    await service.outbox.deliver()
    assert [str(m["chat_id"]) for m in telegram.sent] == [KL_CHAT]


async def test_two_processes_claiming_the_same_digest_take_it_once(database) -> None:
    """Separate sessions, as two app processes would have, on each backend."""
    sessions = async_sessionmaker(database.engine, expire_on_commit=False)
    code, day = f"TEST-{secrets.token_hex(3)}", date(2026, 12, 2)

    async def claim() -> bool:
        try:
            async with sessions() as s, s.begin():
                return await digests.claim(s, code, day)
        except Exception:  # SQLite: the other writer holds the lock until it commits
            return False

    results = await asyncio.gather(*(claim() for _ in range(4)))
    async with sessions() as s, s.begin():
        await s.execute(delete(Digest).where(Digest.mission_code == code))
    assert sorted(results) == [False, False, False, True]
