"""Photos, documents and voice notes from workers: records, the file store, the fetch queue.

An adapter records a `MediaRef` with the inbound message (so nothing is lost if the
download fails); a background fetcher downloads the bytes later and keeps them under
a random name in `media.dir`. The file is shown only to staff who may see the case it is
attached to (or the transcript, when there is no case).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from pmi.db import utcnow
from pmi.models import Case, CaseStatus, Media

KINDS = ("photo", "document", "voice", "video")
FETCH_BACKOFF_SECONDS = (5, 30, 120, 600, 1800)
MAX_FETCH_ATTEMPTS = len(FETCH_BACKOFF_SECONDS) + 1
OPEN_STATUSES = (
    CaseStatus.NEW,
    CaseStatus.ACKNOWLEDGED,
    CaseStatus.IN_PROGRESS,
    CaseStatus.REFERRED,
)


@dataclass(frozen=True)
class MediaRef:
    """What a channel tells about a file before it is downloaded."""

    kind: str  # one of KINDS
    provider_ref: str  # Telegram file_id / WhatsApp media id
    mime_type: str
    size: int | None = None


async def record(s: AsyncSession, contact_id: int, inbound_id: int, ref: MediaRef) -> Media:
    """Record a file sent with an inbound message, attached to the worker's open case."""
    media = Media(
        contact_id=contact_id,
        inbound_id=inbound_id,
        case_id=await open_case_id(s, contact_id),
        kind=ref.kind if ref.kind in KINDS else "document",
        mime_type=ref.mime_type[:100] or "application/octet-stream",
        size=ref.size,
        provider_ref=ref.provider_ref[:255],
    )
    s.add(media)
    await s.flush()
    return media


async def open_case_id(s: AsyncSession, contact_id: int) -> int | None:
    """The worker's most recent case that is still open, if any."""
    return await s.scalar(
        select(Case.id)
        .where(Case.contact_id == contact_id, Case.status.in_(OPEN_STATUSES))
        .order_by(Case.id.desc())
        .limit(1)
    )


async def of_inbound(s: AsyncSession, inbound_id: int) -> Media | None:
    return await s.scalar(select(Media).where(Media.inbound_id == inbound_id))


async def of_inbound_ids(s: AsyncSession, inbound_ids: Sequence[int]) -> dict[int, Media]:
    """Media by inbound message id, for showing a transcript."""
    if not inbound_ids:
        return {}
    rows = await s.scalars(select(Media).where(Media.inbound_id.in_(list(inbound_ids))))
    return {m.inbound_id: m for m in rows}


async def claim_due_fetch(s: AsyncSession) -> Media | None:
    """One media record still to download, locked for this process (SKIP LOCKED)."""
    return await s.scalar(
        select(Media)
        .where(
            Media.storage_key.is_(None),
            Media.fetch_error.is_(None),
            or_(Media.next_fetch_at.is_(None), Media.next_fetch_at <= utcnow()),
        )
        .order_by(Media.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )


def fetch_failed(media: Media, reason: str, *, final: bool = False) -> None:
    """Note a failed download: retry later with backoff, or give up with the reason."""
    media.fetch_attempts += 1
    if final or media.fetch_attempts >= MAX_FETCH_ATTEMPTS:
        media.fetch_error = reason[:255]
        return
    delay = FETCH_BACKOFF_SECONDS[media.fetch_attempts - 1]
    media.next_fetch_at = utcnow() + timedelta(seconds=delay)


class MediaStore:
    """Files under one directory, named by random keys (never by anything the worker sent)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, data: bytes) -> tuple[str, str]:
        """Write the bytes; return (storage key, sha256)."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = secrets.token_hex(16)
        path = self.root / key
        with open(path, "xb") as f:  # never overwrite
            f.write(data)
        path.chmod(0o600)
        return key, hashlib.sha256(data).hexdigest()

    def path(self, key: str) -> Path:
        if not key.isalnum():  # keys are hex; refuse anything that could leave the directory
            raise ValueError("bad storage key")
        return self.root / key

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def keys_older_than(self, seconds: float) -> list[str]:
        """Stored keys whose files are older than this (newer ones may not be committed yet)."""
        if not self.root.exists():
            return []
        horizon = time.time() - seconds
        return [p.name for p in self.root.iterdir() if p.is_file() and p.stat().st_mtime < horizon]


async def sweep_orphans(s: AsyncSession, store: MediaStore, grace_seconds: float = 3600) -> int:
    """Delete files no record points to any more (a worker's erasure, retention, a crash).

    Records go with their contact or message (cascades), so the files are removed here,
    whichever path deleted the records.
    """
    keys = store.keys_older_than(grace_seconds)
    if not keys:
        return 0
    kept = set(await s.scalars(select(Media.storage_key).where(Media.storage_key.in_(keys))))
    orphans = [k for k in keys if k not in kept]
    for key in orphans:
        store.delete(key)
    return len(orphans)
