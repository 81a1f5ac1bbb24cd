"""Erasure in Rasa's own conversation store: a worker's events, and events past retention.

Rasa 3.6 has no delete in its tracker store API: replacing a conversation's events with
an empty list (`PUT /conversations/<id>/tracker/events`) leaves every event in the SQL
store, which only ever appends. So the rows are deleted here, inside the Rasa process that
owns the store, under the conversation's lock:

- SQL tracker store (SQLite for `make run`, PostgreSQL in production): `DELETE` of the
  sender's `events` rows; on SQLite with `secure_delete` on, so freed pages are zeroed and
  no text stays readable in the file (and a WAL, if any, is checkpointed and truncated);
- in-memory tracker store: the serialised tracker is dropped;
- a `FailSafeTrackerStore` wrapper: both its primary store and its fallback
  (`rasa_internals.inner_tracker_stores`).
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from rasa.core.tracker_store import InMemoryTrackerStore, SQLTrackerStore
from rasa.shared.core.trackers import DialogueStateTracker

from rasa_project.channels.rasa_internals import inner_tracker_stores

logger = logging.getLogger(__name__)


def _sql_delete(store: SQLTrackerStore, where: Any) -> int:
    events = store.SQLEvent
    with store.engine.begin() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            conn.exec_driver_sql("PRAGMA secure_delete=ON")
        deleted = conn.execute(sa.delete(events.__table__).where(where)).rowcount or 0
    if sqlite:
        with store.engine.connect() as conn:
            mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
            if str(mode).lower() == "wal":
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return int(deleted)


async def erase_conversation(store: Any, sender_id: str) -> int:
    """Delete every stored event of one conversation; return how many rows or trackers."""
    erased = 0
    for item in inner_tracker_stores(store):
        if isinstance(item, SQLTrackerStore):
            erased += _sql_delete(item, item.SQLEvent.__table__.c.sender_id == sender_id)
        elif isinstance(item, InMemoryTrackerStore):
            erased += int(item.store.pop(sender_id, None) is not None)
        else:  # a store this project does not configure: refuse rather than pretend
            raise TypeError(f"cannot erase from a {type(item).__name__}")
    logger.info("erased a conversation (%s rows)", erased)
    return erased


async def prune_before(store: Any, before: float) -> int:
    """Delete the events older than `before` (a UNIX time) of every conversation."""
    pruned = 0
    for item in inner_tracker_stores(store):
        if isinstance(item, SQLTrackerStore):
            pruned += _sql_delete(item, item.SQLEvent.__table__.c.timestamp < before)
        elif isinstance(item, InMemoryTrackerStore):
            pruned += await _prune_memory(item, before)
        else:
            raise TypeError(f"cannot prune a {type(item).__name__}")
    logger.info("pruned %s old events", pruned)
    return pruned


async def _prune_memory(store: InMemoryTrackerStore, before: float) -> int:
    pruned = 0
    for sender_id in list(store.store):
        tracker = await store.retrieve_full_tracker(sender_id)
        if tracker is None:
            continue
        kept = [e for e in tracker.events if (e.timestamp or 0) >= before]
        pruned += len(tracker.events) - len(kept)
        if not kept:
            del store.store[sender_id]
        elif len(kept) < len(tracker.events):
            slots = store.domain.slots if store.domain else []
            fresh = DialogueStateTracker.from_events(sender_id, kept, slots)
            store.store[sender_id] = store.serialise_tracker(fresh)
    return pruned
