"""Staff alerts: hand queued alerts to the outbox for the staff Telegram chat (the mission's
own chat when it has one); repeat and escalate urgent cases nobody acknowledged; once a day,
each mission's overdue cases.

Alerts carry no personal data (no name, phone, place or story): the reference, the
category, the country, the mission and a link to the console, where access is checked.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from datetime import date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.outbox import Outbox
from pmi import alerts, digests
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
        self._digest_day: date | None = None  # done in this process (the rows guard the rest)

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
        if not self._sends():
            return 0
        chats = self._settings.alerts
        async with self._sessions() as s, s.begin():
            due = await alerts.take_pending(s, limit)
            by_chat: dict[str, list[tuple[StaffAlert, str]]] = defaultdict(list)
            for alert, case in due:
                if chat := chats.chat_of(alert.mission_code):
                    by_chat[chat].append((alert, self.render(alert, case)))
            handed = 0
            for chat, texts in by_chat.items():
                handed += await alerts.hand_over(s, chat, texts)
        if handed:
            self._outbox.notify()
        return handed

    def _sends(self) -> bool:
        """Whether there is a staff chat and a Telegram bot to send to it with."""
        alert_chats = self._chat_id or self._settings.alerts.mission_chats
        return (
            bool(alert_chats)
            and self._outbox is not None
            and self._outbox.handles(alerts.STAFF_CHANNEL)
        )

    def render_digest(self, mission_code: str, day: date, late: list[digests.Late]) -> str:
        """The daily overdue list of one mission, in the staff's language (data/replies.yml)."""
        lang, labels = STAFF_LANGUAGE, self._labels
        mission = self._missions.by_code.get(mission_code)
        lines = [
            self._replies.get("overdue_digest_line", lang).format(
                reference=c.reference,
                priority=labels.label("priorities", c.priority, lang),
                category=labels.label("category", c.category, lang),
                days=c.late.days,
                hours=c.late.seconds // 3600,
            )
            for c in late[: digests.MAX_LISTED]
        ]
        if len(late) > digests.MAX_LISTED:
            more = self._replies.get("overdue_digest_more", lang)
            lines.append(more.format(count=len(late) - digests.MAX_LISTED))
        return self._replies.get("overdue_digest", lang).format(
            mission=mission.name if mission else mission_code,
            day=day.isoformat(),
            count=len(late),
            lines="\n".join(lines),
            link=f"{self._settings.alerts.console_url}/?mission={mission_code}",
        )

    async def send_overdue_digests(self, now: datetime | None = None) -> int:
        """Once a day, after `overdue_digest_hour` (UTC), each mission's overdue cases to its
        staff chat; return how many digests were queued. Safe to call from every process."""
        now = now or utcnow()
        if now.hour < self._settings.alerts.overdue_digest_hour or not self._sends():
            return 0
        if self._digest_day == now.date():
            return 0  # not every 30 seconds all day: the open cases are read once a day
        queued = 0
        async with self._sessions() as s, s.begin():
            late = await digests.overdue_by_mission(s, self._settings.deadlines, now)
            for code, cases in sorted(late.items()):
                chat = self._settings.alerts.chat_of(code)
                if chat and await digests.claim(s, code, now.date()):
                    await digests.queue(s, chat, self.render_digest(code, now.date(), cases))
                    queued += 1
        self._digest_day = now.date()
        if queued:
            self._outbox.notify()  # type: ignore[union-attr]
        return queued

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
                await self.send_overdue_digests()
            except Exception:  # keep alerting alive; the traceback is logged
                logger.exception("staff alert loop failed")
            await asyncio.sleep(self._settings.alerts.check_seconds)
