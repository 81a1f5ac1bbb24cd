"""Fault suite: processes killed under load, the database taken away, a failing Bot API,
malformed webhooks. Runs on the scaled stack (`tests/scaled.py`); the short form is part
of `make test`, the long form is `make test-faults` (`PMI_LONG=1`).

Afterwards every message acknowledged was stored, run through Rasa once and in order, and
answered; every reply was delivered once and in order, with the one exception Telegram
forces: a reply handed to Telegram whose acknowledgement never came back (the app killed
in between, or the API answering after the timeout) is sent again, as it cannot be told
apart from one Telegram never got. Those are counted, not hidden.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import delete, func, select

from bot.outbox import IN_FLIGHT_MAX
from devtools.balanced_load import Load
from devtools.fake_telegram import text_update
from devtools.stack import SECRET_HEADER, WEBHOOK_PATH
from pmi.db import create_engine
from pmi.models import Contact, InboundMessage
from tests.scaled import LONG, Scaled, log_count, report, settle, tally, timed

CHATS, TURNS = (12, 7) if LONG else (6, 5)
GAP = (0.2, 1.0)  # seconds between one chat's messages: a wave lasts a few seconds


async def _wave(
    scaled: Scaled, load: Load, fault: Callable[[], Awaitable[None]], chats: int = CHATS
) -> None:
    """Post a wave of conversations; inject the fault once a third of it was accepted."""
    start = load.accepted_count()
    planned = chats * TURNS

    async def inject() -> None:
        while load.accepted_count() - start < planned / 3:
            await asyncio.sleep(0.1)
        await fault()

    await asyncio.gather(load.run(chats, TURNS), inject())


def _assert_exactly_once(counts: dict[str, int], redelivery_allowed: int) -> None:
    assert counts["acknowledged_not_stored"] == 0
    assert counts["accepted"] == counts["sent"]
    assert counts["processed"] == counts["sent"]
    assert counts["processed_twice"] == 0
    assert counts["out_of_order"] == 0
    assert counts["never_reached_rasa"] == 0
    assert counts["unanswered"] == 0  # no turn silently lost its reply
    assert counts["replies_undelivered"] == 0
    assert counts["chats_delivered_out_of_order"] == 0
    assert counts["replies_duplicated"] <= redelivery_allowed


async def test_processes_killed_and_restarted_under_load(scaled: Scaled) -> None:
    """Kill -9 a Rasa server, the action server and an app, one at a time, under load."""
    await scaled.healthy()
    load = Load(scaled, seed=7, gap=GAP)
    counts: dict[str, Any] = Counter()
    victims = [scaled.rasas[0], scaled.actions, scaled.apps[1]]
    if LONG:
        victims += [scaled.rasas[1], scaled.apps[0]]
    abandoned_before = log_count(scaled, "turn abandoned", "rasa")
    replayed_before = log_count(scaled, "replaying turn", "rasa")
    async with timed("load", counts):
        for victim in victims:

            async def crash(victim=victim) -> None:  # type: ignore[no-untyped-def]
                await scaled.kill(victim)
                counts["faults_injected"] += 1
                counts[f"killed_{victim.name}"] += 1
                await asyncio.sleep(1)
                await scaled.restart(victim)

            await _wave(scaled, load, crash)
        await settle(scaled, load)
    counts.update(await tally(scaled, load))
    # The action server killed mid-turn: Rasa's relay channel abandons the turn (503) and
    # the app asks again, instead of answering without the action's reply.
    counts["turns_abandoned"] = log_count(scaled, "turn abandoned", "rasa") - abandoned_before
    # An app killed after Rasa ran a turn but before it stored the answer: the message is
    # sent again with the same id and Rasa replays the turn instead of running it twice.
    counts["turns_replayed"] = log_count(scaled, "replaying turn", "rasa") - replayed_before
    report("faults: kill -9 and restart", counts)
    app_kills = sum(v for k, v in counts.items() if k.startswith("killed_app"))
    # A killed app may have had sends in flight (one per outbox worker or direct delivery),
    # accepted by the Bot API but not yet recorded: those are sent again (at least once,
    # never lost).
    _assert_exactly_once(counts, redelivery_allowed=app_kills * IN_FLIGHT_MAX)


async def test_app_killed_while_rasa_runs_the_turn(scaled: Scaled) -> None:
    """The app dies after sending a message to Rasa and before storing the answer.

    The action server is made slow (6 s per request) so the turn is still running in Rasa
    when the app that sent it is killed; the other app's retry loop sends the message
    again. Sanic cancels Rasa's handler when the app's connection drops, so the turn is
    dropped (nothing saved) and runs again in full: the worker gets the answer once, but
    the custom action was called twice (`action_calls`): an action with side effects
    (a complaint filed, an emergency case opened) must be idempotent itself. When the app
    dies after Rasa saved the turn, the turn is replayed instead (`turns_replayed`).
    """
    await scaled.healthy()
    load = Load(scaled, seed=11)
    load.apps = [scaled.apps[0]]  # this message goes to app1
    counts: dict[str, Any] = Counter()
    replayed_before = log_count(scaled, "replaying turn", "rasa")
    scaled.action_proxy.delay = 6
    calls_before = scaled.action_proxy.posts
    await load.conversation("id", ["biaya kerja ke taiwan brp"])
    await asyncio.sleep(2.5)  # Rasa is waiting for the action server
    await scaled.kill(scaled.apps[0])
    counts["faults_injected"] += 1
    await asyncio.sleep(8)  # let Rasa finish (or drop) the turn, then bring the app back
    scaled.action_proxy.delay = 0
    await scaled.restart(scaled.apps[0])
    await settle(scaled, load)
    counts.update(await tally(scaled, load))
    counts["turns_replayed"] = log_count(scaled, "replaying turn", "rasa") - replayed_before
    counts["action_calls"] = scaled.action_proxy.posts - calls_before
    report("faults: app killed mid-turn", counts)
    assert counts["action_calls"] >= 1  # the kill did hit a turn waiting for an action
    _assert_exactly_once(counts, redelivery_allowed=0)


async def test_database_unavailable_for_a_while(scaled: Scaled) -> None:
    """Webhooks answer 5xx while the database is away (the provider retries), never 200."""
    await scaled.healthy()
    load = Load(scaled, seed=8, gap=GAP)
    counts: dict[str, Any] = Counter()

    async def outage() -> None:
        scaled.proxy.cut()
        counts["faults_injected"] += 1
        await asyncio.sleep(8)
        scaled.proxy.restore()

    async with timed("load", counts):
        await _wave(scaled, load, outage)
        await settle(scaled, load)
    counts.update(await tally(scaled, load))
    refused = {status: n for status, n in load.statuses.items() if status != 200}
    counts["webhook_5xx"] = sum(n for status, n in refused.items() if status >= 500)
    report("faults: database outage", counts)
    assert counts["webhook_5xx"] > 0, "the outage was not noticed"
    assert all(status >= 500 for status in refused), refused  # retryable, never a 4xx
    _assert_exactly_once(counts, redelivery_allowed=0)


class BotApiFaults:
    """A slow and failing Bot API: 5xx, 429 with retry_after, and timeouts, at random.

    A timeout either loses the message (the API fails after the client gave up) or
    delivers it anyway (only the answer was late): the second kind may be sent again.
    """

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.injected: Counter[str] = Counter()
        self.calls: dict[str, list[tuple[float, str]]] = defaultdict(list)

    async def __call__(self, params: dict[str, Any]) -> int | None:
        chat, roll = str(params["chat_id"]), self.rng.random()
        outcome: tuple[str, int | None, float]
        if roll < 0.12:
            outcome = ("http_500", 500, 0)
        elif roll < 0.18:
            outcome = ("http_502", 502, 0)
        elif roll < 0.28:
            outcome = ("http_429", 429, 0)
        elif roll < 0.31:
            outcome = ("timeout_lost", 500, 6.5)
        elif roll < 0.33:
            outcome = ("timeout_delivered", None, 6.5)
        else:
            outcome = ("ok", None, 0)
        name, status, delay = outcome
        self.calls[chat].append((time.monotonic(), name))
        if name != "ok":
            self.injected[name] += 1
        if delay:
            await asyncio.sleep(delay)  # longer than the bot's read timeout (5 s)
        return status

    def too_soon(self) -> int:
        """Retries of one chat sooner than the backoff allows after a refusal (1 s)."""
        count = 0
        for calls in self.calls.values():
            for (at, outcome), (next_at, _) in itertools.pairwise(calls):
                if outcome != "ok" and next_at - at < 0.9:
                    count += 1
        return count


async def test_slow_and_failing_bot_api(scaled: Scaled) -> None:
    """Retries with backoff, nothing lost, duplicates only from late answers, no spam."""
    await scaled.healthy()
    load = Load(scaled, seed=9, gap=GAP)
    faults = BotApiFaults(seed=9)
    counts: dict[str, Any] = Counter()
    scaled.telegram.send_fault = faults
    try:
        async with timed("load", counts):
            await load.run(CHATS, TURNS)
            await settle(scaled, load, timeout=400)
    finally:
        scaled.telegram.send_fault = None
    counts.update(await tally(scaled, load))
    counts.update(faults.injected)
    counts["faults_injected"] = sum(faults.injected.values())
    counts["retried_too_soon"] = faults.too_soon()
    counts["max_attempts_per_chat"] = max(len(c) for c in faults.calls.values())
    report("faults: slow and failing Bot API", counts)
    assert counts["faults_injected"] > 0
    assert counts["retried_too_soon"] == 0
    _assert_exactly_once(counts, redelivery_allowed=faults.injected["timeout_delivered"])


def _mutations(rng: random.Random, chat_id: int, update_id: int) -> list[tuple[str, bytes]]:
    """Malformed and odd webhook bodies, each with a name for the report."""
    good = text_update(update_id, chat_id, "halo")
    junk: list[Any] = [None, 0, -1, 2**70, 1.5, "", "x" * 5000, [], {}, [1, "a"], True, "\x00"]
    cases: list[tuple[str, Any]] = [
        ("not json", b"\xff\xfe{"),
        ("empty", b""),
        ("array", []),
        ("number", 5),
        ("no update_id", {"message": good["message"]}),
        ("string update_id", {**good, "update_id": "1"}),
        ("huge text", text_update(update_id, chat_id, "a" * 100_000)),
        ("nul and rtl", text_update(update_id, chat_id, "ha\x00lo \u202e\ufeff")),
        ("lone surrogate", b'{"update_id": 5, "message": {"text": "\\ud800"}}'),
        ("deep nesting", {"update_id": update_id, "message": json.loads("[" * 500 + "]" * 500)}),
    ]
    for n in range(150):
        mutated = json.loads(json.dumps(good))
        mutated["update_id"] = update_id + 1 + n
        target = rng.choice([mutated, mutated["message"], mutated["message"]["chat"]])
        key = rng.choice(list(target))
        if rng.random() < 0.3:
            del target[key]
        else:
            target[key] = rng.choice(junk)
        cases.append((f"mutation {key}", mutated))
    return [(name, c if isinstance(c, bytes) else json.dumps(c).encode()) for name, c in cases]


async def test_webhook_fuzz(scaled: Scaled) -> None:
    """Malformed updates get 4xx (or 200 if harmless), never 5xx; a wrong secret stores nothing."""
    await scaled.healthy()
    app = scaled.apps[0]
    rng = random.Random(10)
    chat_id, first_update = scaled.next_chat(), scaled.next_update()
    for _ in range(1000):  # reserve the update ids the cases use
        scaled.next_update()
    cases = _mutations(rng, chat_id, first_update)
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    engine = create_engine(scaled.database_url)
    try:
        async with engine.connect() as conn:
            before = await conn.scalar(select(func.count()).select_from(InboundMessage))
        for name, body in cases:
            for secret in (scaled.stack.webhook_secret, "wrong"):
                if secret == "wrong" and rng.random() > 0.2:
                    continue
                async with scaled.http.post(
                    app.url + WEBHOOK_PATH,
                    data=body,
                    headers={SECRET_HEADER: secret, "Content-Type": "application/json"},
                ) as resp:
                    await resp.read()
                    statuses[resp.status] += 1
                    if resp.status >= 500 or (secret == "wrong" and resp.status != 403):
                        failures.append(f"{name}: HTTP {resp.status}")
        async with engine.connect() as conn:
            stored = await conn.scalar(select(func.count()).select_from(InboundMessage)) - before
    finally:
        await engine.dispose()
    counts = {
        "fuzz_cases": sum(statuses.values()),
        "stored": stored,
        **{f"http_{k}": v for k, v in sorted(statuses.items())},
        "failures": len(failures),
    }
    report("faults: webhook fuzz", counts)
    assert not failures, failures[:10]
    # Off the event loop: the app's readiness check goes through this loop's TCP proxy.
    assert await asyncio.to_thread(app.is_ready)


BAD_CHAT_IDS = [
    ("chat", "id", "[1, 'a']"),  # was stored, and its reply then blocked the whole outbox
    ("chat", "id", "x" * 5000),  # was too long for the column: 500
]
BAD_UPDATES = [
    ("message", "chat", None),  # was an AttributeError: 500
    ("message", "text", ["a"]),  # was a TypeError in clean_text: 500
    ("message", "text", 5),  # was a TypeError: 500
    ("message", "date", 2**70),  # was an OverflowError in PTB's de_json: 500
]


async def _post_bad(scaled: Scaled, bad: list[tuple[str, str, Any]]) -> list[int]:
    """Post updates with one field made invalid; return the webhook's answers."""
    app, statuses = scaled.apps[0], []
    engine = create_engine(scaled.database_url)
    try:
        for where, key, value in bad:
            update = text_update(scaled.next_update(), 1, "halo")
            (update["message"] if where == "message" else update["message"]["chat"])[key] = value
            async with scaled.http.post(
                app.url + WEBHOOK_PATH,
                json=update,
                headers={SECRET_HEADER: scaled.stack.webhook_secret},
            ) as resp:
                statuses.append(resp.status)
    finally:
        # Never leave a poisoned reply behind for the other tests of the session.
        async with engine.begin() as conn:
            await conn.execute(
                delete(Contact).where(Contact.channel_user_id.in_(["[1, 'a']", "x" * 5000]))
            )
        await engine.dispose()
    return statuses


async def test_webhook_rejects_chat_ids_that_are_not_integers(scaled: Scaled) -> None:
    """Found by this suite: such an update was stored and its reply blocked the outbox."""
    await scaled.healthy()
    assert await _post_bad(scaled, BAD_CHAT_IDS) == [400] * len(BAD_CHAT_IDS)


async def test_webhook_rejects_malformed_chat_text_and_date(scaled: Scaled) -> None:
    """Found by this suite: each of these answered 500 (the provider would retry forever)."""
    await scaled.healthy()
    assert await _post_bad(scaled, BAD_UPDATES) == [400] * len(BAD_UPDATES)
