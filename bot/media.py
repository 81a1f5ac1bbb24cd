"""Background download of the files workers send, from the channel that carried them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from pmi import media as media_records
from pmi.models import Contact

logger = logging.getLogger(__name__)


class TooLarge(Exception):
    """The file is over the configured size limit: it is not downloaded."""


class FetchFailed(Exception):
    """The channel could not give the file now (network, server error): try again later."""


class MediaSource(Protocol):
    async def fetch(self, provider_ref: str, max_bytes: int) -> bytes:
        """The file's bytes; TooLarge over the limit, FetchFailed to retry later."""
        ...


class MediaFetcher:
    """Downloads recorded media one at a time, with retries and backoff."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        store: media_records.MediaStore,
        sources: dict[str, MediaSource],
        max_bytes: int,
    ) -> None:
        self._sessions = sessions
        self._store = store
        self._sources = sources
        self._max_bytes = max_bytes
        self._wake = asyncio.Event()

    def notify(self) -> None:
        self._wake.set()

    async def fetch_one(self) -> bool | None:
        """Download one due file: True stored, False failed, None nothing due."""
        async with self._sessions() as s, s.begin():
            media = await media_records.claim_due_fetch(s)
            if media is None:
                return None
            contact = await s.get(Contact, media.contact_id)
            source = self._sources.get(contact.channel) if contact else None
            if source is None:
                media_records.fetch_failed(media, "no source for this channel", final=True)
                return False
            try:
                data = await source.fetch(media.provider_ref, self._max_bytes)
            except TooLarge as exc:
                media_records.fetch_failed(media, f"too large: {exc}", final=True)
                logger.info("media_id=%s not downloaded: too large", media.id)
                return False
            except FetchFailed as exc:
                media_records.fetch_failed(media, str(exc))
                logger.warning("media_id=%s download failed: %s", media.id, exc)
                return False
            if len(data) > self._max_bytes:
                media_records.fetch_failed(media, "too large", final=True)
                return False
            media.storage_key, media.sha256 = self._store.put(data)
            media.size = len(data)
            return True

    async def sweep(self) -> int:
        """Remove files whose records were deleted; return how many."""
        async with self._sessions() as s:
            removed = await media_records.sweep_orphans(s, self._store)
        if removed:
            logger.info("removed %d media files no longer referenced", removed)
        return removed

    async def run(self, tick: float = 5.0, sweep_every: float = 3600.0) -> None:
        """Background task: download whenever notified, and at least every `tick` seconds."""
        last_sweep = 0.0
        while True:
            self._wake.clear()
            try:
                while await self.fetch_one() is not None:
                    pass
                if time.monotonic() - last_sweep > sweep_every:
                    last_sweep = time.monotonic()
                    await self.sweep()
            except Exception:  # keep the loop alive; the traceback is logged
                logger.exception("media download failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=tick)
