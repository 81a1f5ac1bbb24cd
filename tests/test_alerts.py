"""Staff alerts through the real python-telegram-bot library and a local fake Bot API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select
from telegram import Bot

from bot.alerts import AlertService
from pmi import cases, messages
from pmi.db import utcnow
from pmi.knowledge import Replies
from pmi.labels import CaseLabels
from pmi.missions import Missions
from pmi.models import Case, Priority, StaffAlert
from tests.conftest import make_settings

STAFF_CHAT = "-100777"


@pytest.fixture
async def service(sessions, telegram) -> AsyncIterator[AlertService]:
    settings = make_settings("sqlite:///unused.db")
    settings.alerts.staff_telegram_chat_id = STAFF_CHAT
    content = settings.content
    bot = Bot(telegram.token, base_url=telegram.base_url)
    await bot.initialize()
    yield AlertService(
        settings,
        sessions,
        Missions.load(content.missions_file),
        CaseLabels.load(content.case_labels_file),
        Replies.load(content.replies_file),
        bot,
    )
    await bot.shutdown()


async def _urgent_case(sessions, service: AlertService) -> Case:  # type: ignore[no-untyped-def]
    async with sessions() as s, s.begin():
        contact = await messages.get_or_create_contact(s, "telegram", "555")
        return await cases.create_case(
            s,
            conversation_id=contact.public_id,
            category=cases.EMERGENCY,
            mission=service._missions.route("SA", "Jeddah"),
            priority=Priority.URGENT,
            country="SA",
            description="majikan memukul saya, Siti, +966501234567",
            phone="+966501234567",
            location="Jalan Palestina 12",
        )


async def test_new_urgent_case_alerts_the_staff_chat_without_personal_data(
    sessions, service, telegram
) -> None:
    case = await _urgent_case(sessions, service)
    assert await service.deliver_pending() == 1
    [sent] = telegram.sent
    assert str(sent["chat_id"]) == STAFF_CHAT
    text = sent["text"]
    assert case.reference in text and "KJRI Jeddah" in text and "DARURAT BARU" in text
    for private in ("Siti", "+966501234567", "Palestina", "memukul"):
        assert private not in text
    assert await service.deliver_pending() == 0  # delivered once, not again


async def test_unacknowledged_urgent_case_is_repeated_and_escalated(
    sessions, service, telegram
) -> None:
    case = await _urgent_case(sessions, service)
    await service.deliver_pending()
    assert await service.repeat_unacknowledged() == 0  # not yet due
    async with sessions() as s, s.begin():
        stored = await s.get(Case, case.id)
        stored.last_alert_at = utcnow() - timedelta(minutes=16)
    assert await service.repeat_unacknowledged() == 1
    assert await service.deliver_pending() == 2
    texts = [m["text"] for m in telegram.sent[1:]]
    assert any("BELUM DITANGGAPI" in t and "KJRI Jeddah" in t for t in texts)
    assert any("ESKALASI" in t and "KP2MI" in t for t in texts)
    async with sessions() as s:
        routes = (
            await s.scalars(select(StaffAlert.mission_code).where(StaffAlert.case_id == case.id))
        ).all()
    assert sorted(routes) == ["KJRI-JEDDAH", "KJRI-JEDDAH", "NATIONAL-CRISIS"]


async def test_acknowledged_case_is_not_repeated(sessions, service) -> None:
    case = await _urgent_case(sessions, service)
    async with sessions() as s, s.begin():
        stored = await s.get(Case, case.id)
        stored.last_alert_at = utcnow() - timedelta(hours=1)
        stored.acknowledged_at = utcnow()
    assert await service.repeat_unacknowledged() == 0


async def test_rate_limited_alert_stays_queued_and_goes_out_later(
    sessions, service, telegram
) -> None:
    await _urgent_case(sessions, service)
    telegram.fail_next = [429]
    assert await service.deliver_pending() == 0
    assert await service.deliver_pending() == 1
    assert len(telegram.sent) == 1
