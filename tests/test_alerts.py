"""Staff alerts through the outbox, the real python-telegram-bot library and a local fake
Bot API: handed over without personal data, delivered once, paced and retried like replies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.alerts import AlertService
from bot.outbox import Outbox
from bot.telegram import GROUP_INTERVAL, chat_ref
from pmi import alerts, cases, messages
from pmi.db import utcnow
from pmi.models import Case, OutboundMessage, OutboundStatus, Priority, StaffAlert
from tests.alert_helpers import alert_service

STAFF_CHAT = "-100777"


@pytest.fixture
async def service(sessions, telegram) -> AsyncIterator[AlertService]:
    def configure(settings) -> None:  # type: ignore[no-untyped-def]
        settings.alerts.staff_telegram_chat_id = STAFF_CHAT

    async with alert_service(sessions, telegram, configure) as service:
        yield service


async def deliver(service: AlertService) -> int:
    """Hand pending alerts to the outbox, then let it send what is due; return how many."""
    await service.deliver_pending()
    return await service.outbox.deliver()  # type: ignore[attr-defined]


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
    assert await deliver(service) == 1
    [sent] = telegram.sent
    assert str(sent["chat_id"]) == STAFF_CHAT
    text = sent["text"]
    assert case.reference in text and "KJRI Jeddah" in text and "DARURAT BARU" in text
    for private in ("Siti", "+966501234567", "Palestina", "memukul"):
        assert private not in text
    assert await deliver(service) == 0  # delivered once, not again


async def test_unacknowledged_urgent_case_is_repeated_and_escalated(
    sessions, service, telegram
) -> None:
    case = await _urgent_case(sessions, service)
    await deliver(service)
    assert await service.repeat_unacknowledged() == 0  # not yet due
    async with sessions() as s, s.begin():
        stored = await s.get(Case, case.id)
        stored.last_alert_at = utcnow() - timedelta(minutes=16)
    assert await service.repeat_unacknowledged() == 1
    assert await deliver(service) == 2
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


async def test_rate_limited_alert_waits_in_the_outbox_and_goes_out_later(
    sessions, service, telegram
) -> None:
    case = await _urgent_case(sessions, service)
    telegram.fail_next = [429]
    assert await deliver(service) == 0
    async with sessions() as s, s.begin():
        [alert] = (await s.scalars(select(StaffAlert).where(StaffAlert.case_id == case.id))).all()
        assert alert.status == alerts.QUEUED  # handed over once, not again
        [queued] = (
            await s.scalars(
                select(OutboundMessage).where(OutboundMessage.kind == alerts.ALERT_KIND)
            )
        ).all()
        assert queued.status == OutboundStatus.PENDING and queued.attempts == 1
        assert "rate limit" in (queued.last_error or "")
        assert queued.next_attempt_at > utcnow()  # backed off, not retried at once
        queued.next_attempt_at = utcnow() - timedelta(seconds=1)  # the wait is over
    assert await deliver(service) == 1
    assert len(telegram.sent) == 1


async def test_alerts_stay_for_the_console_without_a_staff_chat_sender(sessions, service) -> None:
    service._outbox = Outbox(sessions, {})  # no Telegram bot configured
    await _urgent_case(sessions, service)
    assert await service.deliver_pending() == 0
    async with sessions() as s:
        [alert] = (await s.scalars(select(StaffAlert))).all()
    assert alert.status == OutboundStatus.PENDING


def test_the_staff_chat_is_paced_as_a_telegram_group() -> None:
    assert GROUP_INTERVAL >= 3  # Telegram allows about 20 messages a minute in a group


def test_the_staff_chat_may_be_a_group_id_or_a_channel_name() -> None:
    assert chat_ref("-100777") == -100777 and chat_ref("555") == 555
    assert chat_ref("@pmi_staff_alerts") == "@pmi_staff_alerts"
