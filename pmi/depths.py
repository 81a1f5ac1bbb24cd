"""How much is waiting: the queue depths the metrics endpoint reports."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pmi.models import (
    Case,
    CaseStatus,
    InboundMessage,
    InboundStatus,
    OutboundMessage,
    OutboundStatus,
    Priority,
)


@dataclass(frozen=True)
class Depths:
    inbound_pending: int  # worker messages not yet processed
    outbox_pending: int  # messages not yet sent
    urgent_unacknowledged: int  # new urgent cases nobody acknowledged


async def read_depths(s: AsyncSession) -> Depths:
    count = func.count()
    inbound = select(count).where(InboundMessage.status == InboundStatus.PENDING)
    outbound = select(count).where(OutboundMessage.status == OutboundStatus.PENDING)
    urgent = select(count).where(
        Case.priority == Priority.URGENT,
        Case.status == CaseStatus.NEW,
        Case.acknowledged_at.is_(None),
    )
    return Depths(
        await s.scalar(inbound) or 0,
        await s.scalar(outbound) or 0,
        await s.scalar(urgent) or 0,
    )
