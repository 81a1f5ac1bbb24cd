"""Scale-out: two Rasa servers and two app processes sharing PostgreSQL and Redis.

Many conversations are posted to both apps at random; one app is killed (SIGKILL) midway
and restarted (in the long form, `PMI_LONG=1`, one Rasa server too). Afterwards every
message was acknowledged, stored, run through Rasa once and in order, and every reply was
delivered once and in order. The counts are printed at the end of the session.
"""

from __future__ import annotations

import asyncio

from devtools.balanced_load import Load
from tests.scaled import LONG, Scaled, log_count, report, settle, tally, timed


async def _kill_midway(scaled: Scaled, load: Load, total: int, counts: dict) -> None:
    """Kill app1 once 40% of the messages were sent, and restart it; likewise rasa1 (long)."""
    while load.accepted_count() < total * 0.4:
        await asyncio.sleep(0.2)
    await scaled.kill(scaled.apps[0])
    counts["faults_injected"] += 1
    await asyncio.sleep(2)
    await scaled.restart(scaled.apps[0])
    if LONG:
        while load.accepted_count() < total * 0.6:
            await asyncio.sleep(0.2)
        await scaled.kill(scaled.rasas[0])
        counts["faults_injected"] += 1
        await scaled.restart(scaled.rasas[0])


async def test_conversations_across_two_apps_and_two_rasa_servers(scaled: Scaled) -> None:
    await scaled.healthy()
    chats, turns = (40, None) if LONG else (16, 5)
    load = Load(scaled, seed=1)
    total = sum(len(t[:turns]) for _, t in (scaled.conversations * chats)[:chats])
    counts: dict = {"faults_injected": 0}
    replayed_before = log_count(scaled, "replaying turn", "rasa")
    async with timed("load", counts):
        await asyncio.gather(load.run(chats, turns), _kill_midway(scaled, load, total, counts))
        await settle(scaled, load)
    counts.update(await tally(scaled, load))
    # Turns Rasa had run for a killed app and replayed when the message came again.
    counts["turns_replayed"] = log_count(scaled, "replaying turn", "rasa") - replayed_before
    report("scale" + (" (long)" if LONG else ""), counts)
    assert counts["sent"] == total
    assert counts["accepted"] == total
    assert counts["acknowledged_not_stored"] == 0
    assert counts["processed"] == total
    assert counts["processed_twice"] == 0
    assert counts["never_reached_rasa"] == 0
    assert counts["out_of_order"] == 0
    assert counts["unanswered"] == 0
    assert counts["replies_undelivered"] == 0
    assert counts["chats_delivered_out_of_order"] == 0
    # A reply the killed app had handed to Telegram but not yet marked sent goes out again
    # (at least once: Telegram has no idempotency key); at most one per crash.
    assert counts["replies_duplicated"] <= counts["faults_injected"]
