"""Retention of personal data: old transcripts deleted, old closed cases anonymised.

Settings `retention.transcript_days` and `retention.closed_case_days` (config.yml). One run:

- messages (both ways) older than `transcript_days` are deleted, except those of a worker
  who still has an open case (staff need the conversation while they work on it);
- workers with no message left, no open case and no activity for `transcript_days` are
  deleted, so their channel id (a phone number on WhatsApp) goes too, and their Rasa
  conversation is queued for deletion (`pmi.erasure`); Rasa's events older than
  `transcript_days` are deleted for everyone (the caller's `prune`);
- workers who erased their data and whose confirmation could not be delivered within a
  day are deleted;
- resolved and closed cases not updated for `closed_case_days` are anonymised exactly as on
  a worker's own erasure request (`pmi.privacy.anonymise_case`): category, country, mission,
  priority, status and dates stay for statistics.

The app runs it every `retention.interval_hours`; `make retention` runs it once. Several app
processes may run it: on PostgreSQL a transaction-level advisory lock lets one of them work
and the others skip the round; SQLite's write lock serialises them anyway.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Exists, delete, exists, func, not_, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from pmi import erasure
from pmi.alerts import STAFF_CHANNEL
from pmi.db import utcnow
from pmi.models import (
    Case,
    CaseStatus,
    Contact,
    InboundMessage,
    InboundStatus,
    OutboundMessage,
    OutboundStatus,
)
from pmi.privacy import anonymise_case
from pmi.settings import RetentionSettings

logger = logging.getLogger(__name__)

CLOSED = (CaseStatus.RESOLVED, CaseStatus.CLOSED)
OPEN = tuple(s for s in CaseStatus.ALL if s not in CLOSED)
_LOCK = text("SELECT pg_try_advisory_xact_lock(hashtext('pmi.retention:' || current_schema()))")
Prune = Callable[[float], Awaitable[object]]  # delete Rasa's events older than a UNIX time
ERASED_GRACE = timedelta(days=1)  # an erased worker's row waits this long for the confirmation


@dataclass(frozen=True)
class RetentionReport:
    inbound_deleted: int = 0
    outbound_deleted: int = 0
    contacts_deleted: int = 0
    cases_anonymised: int = 0
    skipped: bool = False  # another process held the lock


def _open_case_of(contact_id: ColumnElement[int]) -> Exists:
    return exists().where(Case.contact_id == contact_id, Case.status.in_(OPEN))


async def _delete_stale_contacts(
    s: AsyncSession, transcripts_before: datetime, now: datetime
) -> Sequence[Contact]:
    """Contacts with nothing left and no open case (Rasa's copy of each is queued)."""
    stale: Sequence[Contact] = (
        await s.scalars(
            select(Contact).where(
                Contact.channel != STAFF_CHANNEL,  # the staff chat is not a worker
                func.coalesce(Contact.last_inbound_at, Contact.created_at) < transcripts_before,
                not_(exists().where(InboundMessage.contact_id == Contact.id)),
                not_(exists().where(OutboundMessage.contact_id == Contact.id)),
                not_(_open_case_of(Contact.id)),
            )
        )
    ).all()
    for contact in stale:
        await erasure.queue(s, contact.public_id)
        await s.delete(contact)  # closed cases keep their row: contact_id becomes NULL
    undelivered = Contact.erased_at < now - ERASED_GRACE
    await s.execute(delete(Contact).where(Contact.erased_at.is_not(None), undelivered))
    await s.flush()
    return stale


async def _anonymise_closed_cases(s: AsyncSession, cases_before: datetime) -> Sequence[Case]:
    """Closed cases past their keeping time lose what identifies the worker."""
    old_cases = (
        await s.scalars(
            select(Case)
            .where(
                Case.status.in_(CLOSED),
                Case.updated_at < cases_before,
                or_(Case.conversation_id.is_not(None), Case.contact_id.is_not(None)),
            )
            .order_by(Case.id)
        )
    ).all()
    for case in old_cases:
        await anonymise_case(s, case, actor="retention")
    return old_cases


async def apply_retention(
    s: AsyncSession, settings: RetentionSettings, now: datetime | None = None
) -> RetentionReport:
    """One retention round in the caller's transaction (Rasa's copies are queued)."""
    if s.get_bind().dialect.name == "postgresql" and not await s.scalar(_LOCK):
        return RetentionReport(skipped=True)
    now = now or utcnow()
    transcripts_before = now - timedelta(days=settings.transcript_days)
    cases_before = now - timedelta(days=settings.closed_case_days)

    outbound = await s.execute(
        delete(OutboundMessage).where(
            OutboundMessage.created_at < transcripts_before,
            OutboundMessage.status != OutboundStatus.PENDING,
            not_(_open_case_of(OutboundMessage.contact_id)),
        )
    )
    inbound = await s.execute(
        delete(InboundMessage).where(
            InboundMessage.received_at < transcripts_before,
            not_(_open_case_of(InboundMessage.contact_id)),
            # a message not yet processed is never lost, however old
            InboundMessage.status != InboundStatus.PENDING,
        )
    )
    stale = await _delete_stale_contacts(s, transcripts_before, now)
    old_cases = await _anonymise_closed_cases(s, cases_before)
    report = RetentionReport(
        inbound_deleted=inbound.rowcount or 0,
        outbound_deleted=outbound.rowcount or 0,
        contacts_deleted=len(stale),
        cases_anonymised=len(old_cases),
    )
    return report


async def run_retention(
    sessions: async_sessionmaker[AsyncSession],
    settings: RetentionSettings,
    prune: Prune | None = None,
    now: datetime | None = None,
) -> RetentionReport:
    """One round in its own transaction; then Rasa's old events are pruned."""
    now = now or utcnow()
    async with sessions() as s, s.begin():
        report = await apply_retention(s, settings, now)
    if prune is not None and not report.skipped:
        await prune((now - timedelta(days=settings.transcript_days)).timestamp())
    if not report.skipped:
        logger.info(
            "retention: %s inbound and %s outbound messages deleted, %s contacts deleted, "
            "%s cases anonymised",
            report.inbound_deleted,
            report.outbound_deleted,
            report.contacts_deleted,
            report.cases_anonymised,
        )
    return report


async def run_retention_loop(
    sessions: async_sessionmaker[AsyncSession],
    settings: RetentionSettings,
    prune: Prune | None = None,
    first_delay: float = 60.0,
) -> None:
    """Background task of the app: a round shortly after start, then every interval."""
    await asyncio.sleep(first_delay)
    while True:
        try:
            await run_retention(sessions, settings, prune)
        except Exception:  # keep the schedule alive; the traceback is logged
            logger.exception("retention round failed")
        await asyncio.sleep(settings.interval_hours * 3600)
