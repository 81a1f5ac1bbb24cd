"""Staff alerts: hand queued alerts to the outbox for the staff Telegram chat; repeat and
escalate urgent cases nobody acknowledged.

Alerts carry no personal data (no name, phone, place or story): the reference, the
category, the country, the mission and a link to the console, where access is checked.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.outbox import Outbox
from pmi import alerts
from pmi.cases import queue_alert, unacknowledged_urgent
from pmi.db import utcnow
from pmi.knowledge import Replies
from pmi.labels import CaseLabels
from pmi.missions import Missions
from pmi.models import Case, StaffAlert
from pmi.settings import Settings

logger = logging.getLogger(__name__)
STAFF_LANGUAGE = "id"
BATCH = 50


class AlertService:
    """Runs the two staff-alert loops of the app."""

    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        missions: Missions,
        labels: CaseLabels,
        replies: Replies,
        outbox: Outbox | None,
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._missions = missions
        self._labels = labels
        self._replies = replies
        self._outbox = outbox
        self._chat_id = settings.alerts.staff_telegram_chat_id

    def render(self, alert: StaffAlert, case: Case) -> str:
        """The alert text in the staff's language, from the template in data/replies.yml."""
        lang = STAFF_LANGUAGE
        mission = self._missions.by_code.get(alert.mission_code)
        return self._replies.get("staff_alert", lang).format(
            icon="🚨" if case.priority == "urgent" else "📋",
            reason_label=self._labels.label("alert_reasons", alert.reason, lang),
            reference=case.reference,
            priority=self._labels.label("priorities", case.priority, lang),
            category=self._labels.label("category", case.category, lang),
            country=case.country or "?",
            mission=mission.name if mission else alert.mission_code,
            link=f"{self._settings.alerts.console_url}/cases/{case.reference}",
        )

    async def deliver_pending(self, limit: int = BATCH) -> int:
        """Hand pending alerts to the outbox for the staff chat; return how many.

        Without a staff chat (or a Telegram bot to send with) they stay for the console.
        """
        if not self._chat_id or self._outbox is None:
            return 0
        if not self._outbox.handles(alerts.STAFF_CHANNEL):
            return 0
        async with self._sessions() as s, s.begin():
            due = await alerts.take_pending(s, limit)
            texts = [(alert, self.render(alert, case)) for alert, case in due]
            handed = await alerts.hand_over(s, self._chat_id, texts)
        if handed:
            self._outbox.notify()
        return handed

    async def repeat_unacknowledged(self) -> int:
        """Alert again, and alert the fallback route, for urgent cases nobody acknowledged."""
        after = timedelta(minutes=self._settings.alerts.ack_timeout_minutes)
        fallback = self._settings.alerts.fallback_route or self._missions.default.code
        async with self._sessions() as s, s.begin():
            due = await unacknowledged_urgent(s, utcnow(), after)
            for case in due:
                await queue_alert(s, case, case.mission_code, "repeat")
                if fallback != case.mission_code:
                    await queue_alert(s, case, fallback, "escalated")
        return len(due)

    async def run(self) -> None:
        """Background task of the app: repeat, then deliver, every `check_seconds`."""
        while True:
            try:
                await self.repeat_unacknowledged()
                await self.deliver_pending()
            except Exception:  # keep alerting alive; the traceback is logged
                logger.exception("staff alert loop failed")
            await asyncio.sleep(self._settings.alerts.check_seconds)
