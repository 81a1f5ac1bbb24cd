"""The durable erasure queue: conversations to delete from Rasa's tracker store.

A worker's erasure (`/hapus`) and retention delete the app's copy in their own transaction
and queue the Rasa conversation here, in the same transaction. A worker of the app claims
each request (a lease, like the outbox), asks Rasa to delete it, and deletes the request
once Rasa confirmed; a failure is retried with growing delays until it works. Admins see
what is still pending in the console.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from pmi.db import utcnow
from pmi.models import ErasureRequest

LEASE = timedelta(minutes=2)
BACKOFF = (timedelta(seconds=10), timedelta(minutes=1), timedelta(minutes=5), timedelta(hours=1))


@dataclass(frozen=True)
class Pending:
    count: int
    oldest: datetime | None
    last_error: str | None


async def queue(s: AsyncSession, conversation_id: str) -> None:
    """Ask for a conversation to be deleted from Rasa (in the caller's transaction)."""
    s.add(ErasureRequest(conversation_id=conversation_id))


async def claim(s: AsyncSession, now: datetime | None = None) -> ErasureRequest | None:
    """The oldest due request, leased for one attempt (`FOR UPDATE SKIP LOCKED`)."""
    now = now or utcnow()
    request = await s.scalar(
        select(ErasureRequest)
        .where(or_(ErasureRequest.next_attempt_at.is_(None), ErasureRequest.next_attempt_at <= now))
        .order_by(ErasureRequest.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if request is not None:
        request.attempts += 1
        request.next_attempt_at = now + LEASE
    return request


async def done(s: AsyncSession, request_id: int) -> None:
    await s.execute(delete(ErasureRequest).where(ErasureRequest.id == request_id))


async def failed(s: AsyncSession, request_id: int, error: str, now: datetime | None = None) -> None:
    request = await s.get(ErasureRequest, request_id)
    if request is None:
        return
    wait = BACKOFF[min(request.attempts, len(BACKOFF)) - 1]
    request.next_attempt_at = (now or utcnow()) + wait
    request.last_error = error[:255]


async def pending(s: AsyncSession) -> Pending:
    """What admins see: how many erasures wait, since when, and the latest error."""
    count, oldest = (
        await s.execute(
            select(func.count(ErasureRequest.id), func.min(ErasureRequest.requested_at))
        )
    ).one()
    error = await s.scalar(
        select(ErasureRequest.last_error)
        .where(ErasureRequest.last_error.is_not(None))
        .order_by(ErasureRequest.id.desc())
        .limit(1)
    )
    if isinstance(oldest, str):  # SQLite aggregates bypass the column type
        oldest = datetime.fromisoformat(oldest)
    return Pending(int(count or 0), oldest, error)
