"""Search across workers' messages for the console (text, channel, language, intent, dates)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from pmi.corrections import FALLBACK_INTENT
from pmi.danger import POSSIBLE_INTENT as POSSIBLE_DANGER
from pmi.models import Contact, InboundMessage


@dataclass(frozen=True)
class SearchFilters:
    text: str | None = None
    channel: str | None = None
    language: str | None = None
    intent: str | None = None
    # When set: only messages Rasa was unsure of (confidence below it) or fell back on.
    low_confidence_below: float | None = None
    since: datetime | None = None
    until: datetime | None = None

    def any(self) -> bool:
        return any(getattr(self, name) is not None for name in self.__dataclass_fields__)


async def search(
    s: AsyncSession, filters: SearchFilters, limit: int = 100
) -> Sequence[tuple[InboundMessage, Contact]]:
    """Workers' messages matching every given filter (text case-insensitive), newest first."""
    query = select(InboundMessage, Contact).join(Contact, Contact.id == InboundMessage.contact_id)
    if filters.text:
        escaped = filters.text.replace("!", "!!").replace("%", "!%").replace("_", "!_")
        query = query.where(InboundMessage.text.ilike(f"%{escaped}%", escape="!"))
    for column, value in (
        (InboundMessage.channel, filters.channel),
        (InboundMessage.language, filters.language),
        (InboundMessage.intent, filters.intent),
    ):
        if value is not None:
            query = query.where(column == value)
    if filters.low_confidence_below is not None:
        query = query.where(
            or_(
                InboundMessage.intent == FALLBACK_INTENT,
                InboundMessage.confidence < filters.low_confidence_below,
            )
        )
    if filters.since is not None:
        query = query.where(InboundMessage.received_at >= filters.since)
    if filters.until is not None:
        query = query.where(InboundMessage.received_at < filters.until)
    rows = await s.execute(query.order_by(InboundMessage.id.desc()).limit(limit))
    return [(m, c) for m, c in rows.all()]


async def possible_danger(
    s: AsyncSession, since: datetime, limit: int = 100
) -> Sequence[tuple[InboundMessage, Contact]]:
    """Messages the triage judged possibly dangerous (the bot asked "are you in danger?"),
    newest first, for operators to look at even when the worker said no."""
    rows = await s.execute(
        select(InboundMessage, Contact)
        .join(Contact, Contact.id == InboundMessage.contact_id)
        .where(InboundMessage.intent == POSSIBLE_DANGER, InboundMessage.received_at >= since)
        .order_by(InboundMessage.id.desc())
        .limit(limit)
    )
    return [(m, c) for m, c in rows.all()]
