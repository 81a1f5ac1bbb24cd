"""Staff alerts leave through the outbox, to the staff chat, like every other message.

`pmi.cases.queue_alert` records that a mission must be told about a case (a `StaffAlert`,
shown in the console). The app's alert loop renders each pending one without personal
data and hands it over here: one outbound message to the staff chat's contact (channel
`staff_telegram`), which the outbox delivers with its leases, backoff, pacing and metrics.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pmi.messages import add_outbound, get_or_create_contact
from pmi.models import Case, OutboundStatus, StaffAlert

STAFF_CHANNEL = "staff_telegram"  # the outbox sender of the staff chat
ALERT_KIND = "staff_alert"  # outbound kind of an alert
QUEUED = "queued"  # a StaffAlert handed to the outbox


async def take_pending(s: AsyncSession, limit: int) -> Sequence[tuple[StaffAlert, Case]]:
    """The oldest alerts not yet handed over, locked (`SKIP LOCKED`) for this transaction:
    two app processes never hand over the same alert."""
    rows = await s.execute(
        select(StaffAlert, Case)
        .join(Case, Case.id == StaffAlert.case_id)
        .where(StaffAlert.status == OutboundStatus.PENDING)
        .order_by(StaffAlert.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=StaffAlert)
    )
    return [(alert, case) for alert, case in rows.all()]


async def hand_over(s: AsyncSession, chat_id: str, alerts: Sequence[tuple[StaffAlert, str]]) -> int:
    """Queue each alert's text to the staff chat; return how many were handed over."""
    if not alerts:
        return 0
    chat = await get_or_create_contact(s, STAFF_CHANNEL, chat_id)
    for alert, text in alerts:
        await add_outbound(s, chat.id, text, kind=ALERT_KIND)
        alert.status = QUEUED
        alert.attempts += 1
    return len(alerts)
