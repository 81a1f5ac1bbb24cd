"""The benchmark's arithmetic and the harness's counting of lost, duplicated and late replies."""

from __future__ import annotations

import os

import pytest

from devtools.load import Delivered, Turn
from devtools.procfs import cpu_seconds
from devtools.reconcile import reconcile
from devtools.stats import cpu_per_message, per_second, percentile, summary, timeline
from pmi import messages
from pmi.db import create_engine, create_sessionmaker


def test_percentile_interpolates_between_ranks() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0], 99) == 3.0
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 95) == pytest.approx(95.05)
    assert percentile(list(reversed(values)), 99) == pytest.approx(99.01)


def test_summary_is_in_milliseconds() -> None:
    s = summary([0.1, 0.2, 0.3])
    assert s["n"] == 3
    assert s["p50_ms"] == pytest.approx(200.0)
    assert s["mean_ms"] == pytest.approx(200.0)
    assert summary([])["p95_ms"] is None


def test_rates_count_only_inside_the_window() -> None:
    times = [10.0, 11.0, 12.5, 14.9, 15.1, 30.0]
    assert per_second(times, 10.0, 5.0) == pytest.approx(0.8)  # 4 events in 5 s
    assert timeline(times, 10.0, 10.0, step=5) == [0.8, 0.2]


def test_cpu_per_message_from_proc() -> None:
    spent = cpu_seconds(os.getpid())
    sum(i * i for i in range(300_000))  # burn a little CPU
    assert cpu_seconds(os.getpid()) > spent > 0
    assert cpu_seconds(2**22 + 7) == 0.0  # no such process
    per = cpu_per_message({"app": 1.0}, {"app": 1.5, "rasa": 0.2}, 10)
    assert per == {"app": 50.0, "rasa": 20.0}


async def _store(
    url: str, chat: str, update_ids: list[int], replies: list[tuple[int, str]]
) -> None:
    """Store a chat's inbound updates and, per (update index, text), its replies."""
    engine = create_engine(url)
    sessions = create_sessionmaker(engine)
    async with sessions() as s, s.begin():
        contact = await messages.get_or_create_contact(s, "telegram", chat)
        inbound = [
            await messages.store_inbound(s, contact, "telegram", str(u), f"message {u}")
            for u in update_ids
        ]
        await s.flush()
        for index, text in replies:
            await messages.add_outbound(s, contact.id, text, inbound_id=inbound[index].id)
    await engine.dispose()


async def test_reconcile_counts_lost_duplicated_and_out_of_order(app_db: str) -> None:
    await _store(app_db, "501", [1, 2, 3], [(0, "hello"), (1, "cost"), (1, "source")])
    await _store(app_db, "502", [4], [(0, "hello")])
    turns = [
        Turn(501, 1, "hi", sent_at=0.0, accepted_at=0.1),
        Turn(501, 2, "cost?", sent_at=2.0, accepted_at=2.1),
        Turn(501, 3, "thanks", sent_at=6.0, accepted_at=6.1),  # stored, never answered
        Turn(502, 4, "hi", sent_at=0.0, accepted_at=0.1),
        Turn(503, 5, "hi", sent_at=0.0, accepted_at=None),  # no webhook took it
    ]
    received = [
        Delivered(501, 0.5, "hello"),
        Delivered(501, 3.5, "source"),  # before "cost", which was stored first
        Delivered(501, 4.0, "cost"),
        Delivered(502, 0.7, "hello"),
        Delivered(502, 0.9, "hello"),  # sent twice
        Delivered(999, 1.0, "hello"),  # another chat: ignored
    ]
    tally = await reconcile(app_db, turns, received)
    assert tally.messages == 5
    assert tally.answered == 3
    assert tally.lost == 2
    assert tally.not_accepted == 1
    assert tally.duplicated == 1
    assert tally.out_of_order == 1
    assert tally.undelivered == 0
    assert tally.replies_stored == 4
    assert tally.replies_delivered == 5
    assert turns[0].first_reply_seconds == pytest.approx(0.5)
    assert turns[1].first_reply_seconds == pytest.approx(1.5)
    assert turns[1].last_reply_seconds == pytest.approx(2.0)
    assert turns[2].replies == []
