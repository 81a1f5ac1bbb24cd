"""The staff-alert service of the app against a local fake Bot API, for the alert tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from telegram import Bot

from bot.alerts import AlertService
from bot.outbox import Outbox
from bot.telegram import TelegramSender
from pmi import alerts
from pmi.knowledge import Replies
from pmi.labels import CaseLabels
from pmi.missions import Missions
from pmi.settings import Settings
from tests.support import make_settings


@asynccontextmanager
async def alert_service(
    sessions,
    telegram,
    configure: Callable[[Settings], None],  # type: ignore[no-untyped-def]
) -> AsyncIterator[AlertService]:
    """An AlertService whose outbox sends to `telegram`; `configure` sets its alert settings.
    The outbox is `service.outbox`."""
    settings = make_settings("sqlite:///unused.db")
    configure(settings)
    content = settings.content
    bot = Bot(telegram.token, base_url=telegram.base_url)
    await bot.initialize()
    outbox = Outbox(sessions, {alerts.STAFF_CHANNEL: TelegramSender(bot, min_interval=0)})
    service = AlertService(
        settings,
        sessions,
        Missions.load(content.missions_file),
        CaseLabels.load(content.case_labels_file),
        Replies.load(content.replies_file),
        outbox,
    )
    service.outbox = outbox  # type: ignore[attr-defined]
    try:
        yield service
    finally:
        await bot.shutdown()
