"""Staff alerts: deliver queued alerts to the staff Telegram chat; repeat and escalate
urgent cases nobody acknowledged.

Alerts carry no personal data (no name, phone, place or story): the reference, the
category, the country, the mission and a link to the console, where access is checked.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram import Bot
from telegram.error import RetryAfter, TelegramError

from pmi.cases import queue_alert, unacknowledged_urgent
from pmi.db import utcnow
from pmi.knowledge import Replies
from pmi.labels import CaseLabels
from pmi.missions import Missions
from pmi.models import Case, OutboundStatus, StaffAlert
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
        bot: Bot | None,
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._missions = missions
        self._labels = labels
        self._replies = replies
        self._bot = bot
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
        """Send pending alerts to the staff chat; without a chat they stay for the console.

        One alert per transaction, claimed with `FOR UPDATE SKIP LOCKED`: several app
        processes never send the same alert twice, and a crash re-sends at most one.
        """
        if self._bot is None or not self._chat_id:
            return 0
        sent = 0
        for _ in range(limit):
            delivered = await self._deliver_one()
            if not delivered:
                break
            sent += 1
        return sent

    async def _deliver_one(self) -> bool:
        """Send the oldest pending alert: False when none is due or the chat refused it."""
        assert self._bot is not None and self._chat_id
        async with self._sessions() as s, s.begin():
            row = (
                await s.execute(
                    select(StaffAlert, Case)
                    .join(Case, Case.id == StaffAlert.case_id)
                    .where(StaffAlert.status == OutboundStatus.PENDING)
                    .order_by(StaffAlert.id)
                    .limit(1)
                    .with_for_update(skip_locked=True, of=StaffAlert)
                )
            ).first()
            if row is None:
                return False
            alert, case = row
            alert.attempts += 1
            try:
                await self._bot.send_message(chat_id=self._chat_id, text=self.render(alert, case))
            except RetryAfter as exc:
                logger.warning("staff alert rate-limited; retry after %ss", exc.retry_after)
                return False
            except TelegramError as exc:
                logger.warning("staff alert %s not delivered: %s", alert.id, exc)
                return False
            alert.status, alert.sent_at = OutboundStatus.SENT, utcnow()
            return True

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
