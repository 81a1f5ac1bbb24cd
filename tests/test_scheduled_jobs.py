"""The app's background jobs run safely in several processes at once (PostgreSQL).

Each "process" is its own engine on one private schema; the jobs run concurrently
against the same rows, and a slow fake Bot API widens the windows where they overlap.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from telegram import Bot

from bot.alerts import AlertService
from bot.outbox import Outbox
from bot.telegram import TelegramSender
from pmi import alerts, cases, messages
from pmi.db import create_sessionmaker, utcnow
from pmi.knowledge import Replies
from pmi.labels import CaseLabels
from pmi.missions import Missions
from pmi.models import Case, OutboundMessage, OutboundStatus, Priority, StaffAlert
from tests.pgschema import Schema, private_schema
from tests.support import make_settings, postgres_reachable

pytestmark = pytest.mark.skipif(not postgres_reachable(), reason="PostgreSQL not reachable")
PROCESSES = 3


@pytest.fixture
async def schema() -> AsyncIterator[Schema]:
    async with private_schema("pmi_jobs") as found:
        yield found


@pytest.fixture
async def bot(telegram) -> AsyncIterator[Bot]:  # type: ignore[no-untyped-def]
    bot = Bot(telegram.token, base_url=telegram.base_url)
    await bot.initialize()
    yield bot
    await bot.shutdown()


@pytest.fixture
async def engines(schema: Schema) -> AsyncIterator[list]:
    engines = [schema.engine() for _ in range(PROCESSES)]
    yield engines
    for engine in engines:
        await engine.dispose()


def _alert_services(engines: list, bot: Bot) -> list[AlertService]:
    settings = make_settings("sqlite:///unused.db")
    settings.alerts.staff_telegram_chat_id = "-100777"
    content = settings.content
    missions = Missions.load(content.missions_file)
    return [
        AlertService(
            settings,
            create_sessionmaker(e),
            missions,
            CaseLabels.load(content.case_labels_file),
            Replies.load(content.replies_file),
            Outbox(
                create_sessionmaker(e),
                {alerts.STAFF_CHANNEL: TelegramSender(bot, min_interval=0)},
            ),
        )
        for e in engines
    ]


async def _urgent_cases(engine, service: AlertService, count: int) -> list[int]:  # type: ignore[no-untyped-def]
    ids = []
    async with create_sessionmaker(engine)() as s, s.begin():
        for n in range(count):
            contact = await messages.get_or_create_contact(s, "telegram", str(1000 + n))
            case = await cases.create_case(
                s,
                conversation_id=contact.public_id,
                category=cases.EMERGENCY,
                mission=service._missions.route("MY"),
                priority=Priority.URGENT,
                country="MY",
            )
            ids.append(case.id)
    return ids


async def test_staff_alerts_go_out_once_from_several_processes(engines, bot, telegram) -> None:
    services = _alert_services(engines, bot)
    await _urgent_cases(engines[0], services[0], 12)
    telegram.delay = 0.02
    handed = await asyncio.gather(*(s.deliver_pending() for s in services))
    handed += await asyncio.gather(*(s.deliver_pending() for s in services))
    assert sum(handed) == 12  # each alert handed to the outbox once
    outboxes = [s._outbox for s in services]
    sent = await asyncio.gather(*(o.deliver() for o in outboxes if o is not None))
    sent += await asyncio.gather(*(o.deliver() for o in outboxes if o is not None))
    assert sum(sent) == 12
    assert len(telegram.sent) == 12
    assert len({m["text"] for m in telegram.sent}) == 12  # twelve different cases, once each


async def test_unacknowledged_case_is_repeated_once_by_several_processes(
    engines, bot, telegram
) -> None:
    services = _alert_services(engines, bot)
    ids = await _urgent_cases(engines[0], services[0], 8)
    async with create_sessionmaker(engines[0])() as s, s.begin():
        await s.execute(
            update(Case).where(Case.id.in_(ids)).values(last_alert_at=utcnow() - timedelta(hours=1))
        )
    repeated = await asyncio.gather(*(s.repeat_unacknowledged() for s in services))
    assert sum(repeated) == 8
    async with create_sessionmaker(engines[0])() as s:
        repeats = (
            await s.execute(
                select(StaffAlert.case_id, func.count())
                .where(StaffAlert.reason == "repeat")
                .group_by(StaffAlert.case_id)
            )
        ).all()
    assert sorted(repeats) == [(i, 1) for i in sorted(ids)]


async def test_outbox_delivers_each_reply_once_in_order_from_several_processes(
    engines, bot, telegram
) -> None:
    async with create_sessionmaker(engines[0])() as s, s.begin():
        for chat in range(5):
            contact = await messages.get_or_create_contact(s, "telegram", str(2000 + chat))
            for n in range(8):
                await messages.add_outbound(s, contact.id, f"{chat}:{n}")
    telegram.delay = 0.01
    sender = TelegramSender(bot, min_interval=0)
    outboxes = [Outbox(create_sessionmaker(e), {"telegram": sender}) for e in engines]
    sent = await asyncio.gather(*(o.deliver(limit=100) for o in outboxes))
    sent += await asyncio.gather(*(o.deliver(limit=100) for o in outboxes))
    assert sum(sent) == 40
    by_chat: dict[str, list[str]] = defaultdict(list)
    for message in telegram.sent:
        by_chat[str(message["chat_id"])].append(message["text"])
    assert len(by_chat) == 5
    for chat, texts in by_chat.items():
        index = int(chat) - 2000
        assert texts == [f"{index}:{n}" for n in range(8)]  # each once, in order
    async with create_sessionmaker(engines[0])() as s:
        statuses = (await s.scalars(select(OutboundMessage.status))).all()
    assert set(statuses) == {OutboundStatus.SENT}
