"""Human handoff: a person takes a conversation over from the bot, then gives it back."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from pmi import messages
from pmi.models import Contact
from pmi.settings import HandoffSettings

STAFF = "staff"


def _clock(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def next_opening(hours: HandoffSettings, now: datetime) -> datetime | None:
    """None if people answer now; else when they next will (in the office's time zone)."""
    zone = ZoneInfo(hours.timezone)
    local = now.astimezone(zone)
    start, end = _clock(hours.start), _clock(hours.end)
    if local.isoweekday() in hours.days and start <= local.time() < end:
        return None
    for days_ahead in range(8):
        day = (local + timedelta(days=days_ahead)).date()
        opening = datetime.combine(day, start, tzinfo=zone)
        if day.isoweekday() in hours.days and opening > local:
            return opening
    return None  # no office days configured


async def start_handoff(s: AsyncSession, contact: Contact) -> None:
    contact.handoff = True


async def staff_reply(
    s: AsyncSession, contact: Contact, text: str, *, override: bool = False
) -> None:
    """Queue a staff member's message for the worker's channel (held if it is not safe,
    unless `override`: the officer chose to send it anyway, after a warning)."""
    await messages.add_outbound(s, contact.id, text, kind=STAFF, override=override)


async def end_handoff(s: AsyncSession, contact: Contact, notice: str) -> None:
    """Give the conversation back to the bot and tell the worker."""
    contact.handoff = False
    await messages.add_outbound(s, contact.id, notice, kind=STAFF)
