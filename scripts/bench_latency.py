"""`make bench`, latency and throughput: one window at a given concurrency, end to end
through the app and with Rasa alone, on the same Rasa server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from devtools.load import Conversation, TelegramLoad, Turn
from devtools.probes import stages
from devtools.reconcile import reconcile
from devtools.rest_load import RestTurn, rasa_rest_load
from devtools.stack import Stack
from devtools.stats import cpu_per_message, ratio, summary, sustained, timeline
from scripts.bench_common import say


@dataclass
class Window:
    """One measured run at a given concurrency, end to end and Rasa alone."""

    concurrency: int
    seconds: float
    e2e_turns: list[Turn] = field(default_factory=list)
    e2e_start: float = 0.0
    rest_turns: list[RestTurn] = field(default_factory=list)
    rest_start: float = 0.0
    tally: dict[str, int] = field(default_factory=dict)
    app_stages: dict[str, Any] = field(default_factory=dict)
    cpu_e2e: dict[str, float] = field(default_factory=dict)  # ms of CPU per message
    cpu_rest: dict[str, float] = field(default_factory=dict)

    def result(self) -> dict[str, Any]:
        first = [t.first_reply_seconds for t in self.e2e_turns if t.first_reply_seconds is not None]
        last = [t.last_reply_seconds for t in self.e2e_turns if t.last_reply_seconds is not None]
        rest = [t.seconds for t in self.rest_turns if t.seconds is not None]
        e2e, alone = summary(first), summary(rest)
        answered_at = [min(t.replies) for t in self.e2e_turns if t.replies]
        rest_done = [t.sent_at + t.seconds for t in self.rest_turns if t.seconds is not None]
        app_rate = sustained(answered_at, self.e2e_start, self.seconds)
        rasa_rate = sustained(rest_done, self.rest_start, self.seconds)
        return {
            "concurrency": self.concurrency,
            "seconds": self.seconds,
            "e2e_first_reply": e2e,
            "e2e_last_reply": summary(last),
            "rasa_alone": alone,
            "p50_ratio": ratio(e2e["p50_ms"], alone["p50_ms"]),  # type: ignore[arg-type]
            "p95_ratio": ratio(e2e["p95_ms"], alone["p95_ms"]),  # type: ignore[arg-type]
            "p99_ratio": ratio(e2e["p99_ms"], alone["p99_ms"]),  # type: ignore[arg-type]
            "app_msgs_per_s": app_rate,
            "rasa_alone_msgs_per_s": rasa_rate,
            "rasa_alone_failed": sum(1 for t in self.rest_turns if t.seconds is None),
            "tally": self.tally,
            "app_stages": self.app_stages,
            "cpu_ms_per_message": {"end_to_end": self.cpu_e2e, "rasa_alone": self.cpu_rest},
            "timeline_app": timeline(answered_at, self.e2e_start, self.seconds),
            "timeline_rasa": timeline(rest_done, self.rest_start, self.seconds),
        }


def cpu_snapshot(stack: Stack) -> dict[str, float]:
    """CPU seconds used so far by each running service and by this process."""
    found = {name: s.cpu_seconds() for name, s in stack.services.items() if s.running}
    found["bench (load generator + fake Telegram)"] = time.process_time()
    return found


async def measure_window(
    stack: Stack,
    load: TelegramLoad,
    http: aiohttp.ClientSession,
    rasa_url: str,
    database_url: str,
    conversations: Sequence[Conversation],
    concurrency: int,
    seconds: float,
) -> Window:
    window = Window(concurrency, seconds)
    say(f"latency: {concurrency} conversation(s), end to end, {seconds:.0f}s")
    window.e2e_start = time.monotonic()
    cpu = cpu_snapshot(stack)
    turns = await load.run(conversations, concurrency, duration=seconds, progress=say)
    await load.drain(turns, 60)
    window.cpu_e2e = cpu_per_message(cpu, cpu_snapshot(stack), len(turns))
    tally = await reconcile(database_url, turns, load.received)
    window.e2e_turns, window.tally = turns, tally.as_dict()
    window.app_stages = await stages(database_url, turns)
    say(
        f"  {len(turns)} messages, lost {tally.lost}, duplicated {tally.duplicated}, "
        f"out of order {tally.out_of_order}"
    )
    await asyncio.sleep(2)  # let the outbox and Rasa go idle
    say(f"latency: {concurrency} conversation(s), Rasa REST alone, {seconds:.0f}s")
    window.rest_start = time.monotonic()
    cpu = cpu_snapshot(stack)
    window.rest_turns = await rasa_rest_load(
        http, rasa_url, conversations, concurrency, duration=seconds, settle=load.settle
    )
    window.cpu_rest = cpu_per_message(cpu, cpu_snapshot(stack), len(window.rest_turns))
    result = window.result()
    say(
        f"  p95 end to end {result['e2e_first_reply']['p95_ms']} ms, Rasa alone "
        f"{result['rasa_alone']['p95_ms']} ms: ratio {result['p95_ratio']}; "
        f"{result['app_msgs_per_s']} vs {result['rasa_alone_msgs_per_s']} msgs/s"
    )
    await asyncio.sleep(2)
    return window
