"""Media records, the fetch queue and the file store (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import time

import pytest
from sqlalchemy import delete

from bot.media import FetchFailed, MediaFetcher, TooLarge
from pmi import media, messages
from pmi.models import Contact

REF = media.MediaRef("photo", "file-1", "image/jpeg", 10)


class Source:
    def __init__(self, *results: bytes | Exception) -> None:
        self.results = list(results)
        self.calls = 0

    async def fetch(self, provider_ref: str, max_bytes: int) -> bytes:
        self.calls += 1
        result = self.results.pop(0)
        if isinstance(result, Exception):
            raise result
        return result


async def _photo(s, channel: str = "telegram"):  # type: ignore[no-untyped-def]
    contact = await messages.get_or_create_contact(s, channel, f"u-{time.monotonic_ns()}")
    inbound = await messages.store_inbound(s, contact, channel, f"x-{time.monotonic_ns()}", "")
    assert inbound is not None
    return contact, await media.record(s, contact.id, inbound.id, REF)


async def test_a_download_is_retried_with_backoff_then_kept(sessions, tmp_path) -> None:
    async with sessions() as s, s.begin():
        _, record = await _photo(s)
    source = Source(FetchFailed("502"), b"jpeg-bytes")
    store = media.MediaStore(tmp_path)
    fetcher = MediaFetcher(sessions, store, {"telegram": source}, max_bytes=1000)
    assert await fetcher.fetch_one() is False
    assert await fetcher.fetch_one() is None  # not due yet: backing off
    async with sessions() as s, s.begin():
        row = await s.get(type(record), record.id)
        assert row.fetch_attempts == 1 and row.next_fetch_at is not None
        row.next_fetch_at = None  # time passes
    assert await fetcher.fetch_one() is True
    async with sessions() as s:
        row = await s.get(type(record), record.id)
    assert row.storage_key and store.path(row.storage_key).read_bytes() == b"jpeg-bytes"
    assert row.size == len(b"jpeg-bytes") and source.calls == 2


async def test_too_large_files_are_given_up_with_the_reason(sessions, tmp_path) -> None:
    async with sessions() as s, s.begin():
        _, record = await _photo(s)
    fetcher = MediaFetcher(
        sessions, media.MediaStore(tmp_path), {"telegram": Source(TooLarge("99 MB"))}, 1000
    )
    assert await fetcher.fetch_one() is False
    assert await fetcher.fetch_one() is None
    async with sessions() as s:
        row = await s.get(type(record), record.id)
    assert row.storage_key is None and "too large" in (row.fetch_error or "")


async def test_files_of_erased_workers_are_swept(sessions, tmp_path) -> None:
    store = media.MediaStore(tmp_path)
    async with sessions() as s, s.begin():
        _, kept = await _photo(s)
        gone_contact, gone = await _photo(s)
        kept.storage_key, _ = store.put(b"kept")
        gone.storage_key, _ = store.put(b"gone")
        keys = (kept.storage_key, gone.storage_key)
        young, _ = store.put(b"just written, not committed yet")
    old = time.time() - 7200
    for key in keys:
        os.utime(store.path(key), (old, old))
    async with sessions() as s, s.begin():
        await s.execute(delete(Contact).where(Contact.id == gone_contact.id))  # /hapus
    async with sessions() as s:
        assert await media.sweep_orphans(s, store) == 1
    assert store.path(keys[0]).exists() and not store.path(keys[1]).exists()
    assert store.path(young).exists()


def test_storage_keys_cannot_leave_the_directory(tmp_path) -> None:
    store = media.MediaStore(tmp_path)
    for bad in ("../etc/passwd", "a/b", ""):
        with pytest.raises(ValueError):
            store.path(bad)
