"""The scaled-out stack for the scale and fault suites, as a pytest plugin.

Two Rasa servers sharing one tracker store (PostgreSQL) and one lock store (Redis, under a
key prefix of its own), one action server, and two app processes on one PostgreSQL app
database, all started with devtools/stack.py on free ports of 127.0.0.1. Telegram is the
local fake Bot API: updates are posted to either app's webhook at random (a load balancer),
replies are received by the fake. The apps reach PostgreSQL through a TCP proxy the tests
can cut, to take the database away from them. A private database is created for the
stack and dropped afterwards.

`Load` (devtools/balanced_load.py) sends conversations; `tally` counts, from the database,
the fake Bot API and Rasa's trackers, what was sent, stored, processed (once, in order),
answered and delivered (once, in order). The counts of every run are printed at the end of
the pytest session.

Long forms (more conversations, a Rasa server killed too): `PMI_LONG=1` (make test-scale,
make test-faults).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import secrets
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from devtools.balanced_load import Load
from devtools.databases import create_postgres_database, drop_postgres_database, migrate
from devtools.fake_telegram import FakeTelegram
from devtools.load import load_conversations
from devtools.net import reachable
from devtools.reconcile import Stored, stored_for
from devtools.service import Service
from devtools.stack import Stack
from devtools.tcp_proxy import TcpProxy
from pmi.db import create_engine
from pmi.models import Contact, InboundMessage, InboundStatus, OutboundMessage, OutboundStatus
from tests.support import POSTGRES_URL, ROOT

REDIS = ("127.0.0.1", 6379)
LONG = os.environ.get("PMI_LONG") == "1"
REPORTS: list[tuple[str, dict[str, Any]]] = []


def log_count(scaled: Scaled, needle: str, prefix: str) -> int:
    """How many times `needle` appears in the logs of the services named `prefix`..."""
    return sum(
        service.tail(10**9).count(needle)
        for name, service in scaled.stack.services.items()
        if name.startswith(prefix)
    )


def report(name: str, counts: dict[str, Any]) -> None:
    """Keep a run's counts for the summary at the end of the session."""
    REPORTS.append((name, counts))


SUMMARY = ("sent", "processed", "duplicated", "lost", "faults_injected", "fuzz_cases")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not REPORTS:
        return
    terminalreporter.section("scale and fault counts")
    for name, counts in REPORTS:
        terminalreporter.write_line(f"{name}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    faults = [counts for name, counts in REPORTS if name.startswith("faults")]
    if faults:
        failed = [
            r for r in terminalreporter.stats.get("failed", []) if "tests/faults/" in r.nodeid
        ]
        totals = {key: sum(c.get(key, 0) for c in faults) for key in SUMMARY}
        terminalreporter.write_line(
            "fault suite: messages sent {sent}, processed {processed}, duplicated {duplicated},"
            " lost {lost}; faults injected {faults_injected}; fuzz cases tried {fuzz_cases};"
            " failures {failures}".format(**totals, failures=len(failed))
        )


# --- the stack --------------------------------------------------------------------------


@dataclass
class Scaled:
    stack: Stack
    database_url: str  # direct, for the checks
    proxy: TcpProxy  # the apps' way to PostgreSQL
    action_proxy: TcpProxy  # the Rasa servers' way to the action server
    telegram: FakeTelegram
    actions: Service
    rasas: list[Service]
    apps: list[Service]
    http: aiohttp.ClientSession
    conversations: list[tuple[str, tuple[str, ...]]]
    _chat_ids: Iterator[int] = field(default_factory=lambda: itertools.count(7_000_000))
    _update_ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def next_chat(self) -> int:
        return next(self._chat_ids)

    def next_update(self) -> int:
        return next(self._update_ids)

    async def restart(self, service: Service) -> None:
        """Start a killed service again and wait until it is ready (off the event loop)."""
        await asyncio.to_thread(service.restart, wait=True, timeout=400)

    async def kill(self, service: Service) -> None:
        await asyncio.to_thread(service.kill)

    async def healthy(self) -> None:
        """Every service running and ready: what each test starts from and leaves behind."""
        self.proxy.restore()
        self.action_proxy.delay = 0
        self.telegram.send_fault = None
        for service in self.stack.services.values():
            if not service.running:
                await self.restart(service)
        await asyncio.to_thread(self.stack.wait_ready, 400)


def _config_file(workdir: Path) -> Path:
    """config.yml with quick retries, so that the tests do not wait for production timings."""
    data = yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8"))
    data["rasa"].update(retry_seconds=1, timeout_seconds=20)
    path = workdir / "config.yml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


async def _wait_for_table(url: str, table: str, timeout: float) -> None:
    engine = create_engine(url)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            async with engine.connect() as conn:
                if await conn.scalar(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": table}):
                    return
            await asyncio.sleep(0.5)
    finally:
        await engine.dispose()


def _rasa_env(database_url: str, action_port: int, suffix: str) -> dict[str, str]:
    """The Rasa servers' environment: the tracker store on the app's PostgreSQL, the lock
    store on Redis under a key prefix of this session, the action server behind a proxy."""
    url = make_url(database_url)
    return {
        "ACTION_SERVER_URL": f"http://127.0.0.1:{action_port}/webhook",
        "TRACKER_DB_HOST": url.host or "127.0.0.1",
        "TRACKER_DB_NAME": url.database or "",
        "TRACKER_DB_USER": url.username or "postgres",
        "TRACKER_DB_PASSWORD": url.password or "",
        "REDIS_HOST": REDIS[0],
        "REDIS_KEY_PREFIX": f"pmiscale{suffix}",
    }


async def _start(
    stack: Stack, rasa_env: dict[str, str], telegram: FakeTelegram, app_database: str
) -> tuple[list[Service], list[Service]]:
    """Two Rasa servers and an app on each, started after the action server; all ready."""
    endpoints = ROOT / "rasa_project" / "endpoints.production.yml"
    rasas = [  # the API lets the suites read the trackers
        stack.rasa(f"rasa{i}", endpoints=endpoints, env=rasa_env, api=True) for i in (1, 2)
    ]
    apps = [
        stack.app(
            f"app{i}", rasa_url=rasa.url, telegram=telegram, env={"DATABASE_URL": app_database}
        )
        for i, rasa in zip((1, 2), rasas, strict=True)
    ]
    stack.services["actions"].start()
    rasas[0].start()
    # The second Rasa server starts once the first created the tracker table (no race).
    await _wait_for_table(stack.database_url, "events", 300)
    for service in (rasas[1], *apps):
        service.start()
    await asyncio.to_thread(stack.wait_ready, 400)
    return rasas, apps


@pytest.fixture(scope="session")
async def scaled(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Scaled]:
    """Start the scaled-out stack once per session (skipped without PostgreSQL and Redis)."""
    if not (reachable("127.0.0.1", 5432) and reachable(*REDIS)):
        pytest.skip("the scaled stack needs PostgreSQL at 127.0.0.1:5432 and Redis at :6379")
    workdir = tmp_path_factory.mktemp("scaled")
    suffix = secrets.token_hex(4)
    database_url = await create_postgres_database(POSTGRES_URL, f"pmi_scale_{suffix}")
    proxy = TcpProxy(("127.0.0.1", make_url(database_url).port or 5432))
    action_proxy: TcpProxy | None = None
    telegram = FakeTelegram()
    stack: Stack | None = None
    http = aiohttp.ClientSession()
    try:
        await asyncio.to_thread(migrate, database_url)
        await proxy.start()
        await telegram.start()
        app_database = make_url(database_url).set(port=proxy.port)
        stack = Stack(workdir, database_url, env={"PMI_CONFIG": str(_config_file(workdir))})
        actions = stack.action_server()
        action_proxy = TcpProxy(("127.0.0.1", actions.port))
        await action_proxy.start()
        rasa_env = _rasa_env(database_url, action_proxy.port, suffix)
        app_url = app_database.render_as_string(hide_password=False)
        rasas, apps = await _start(stack, rasa_env, telegram, app_url)
        conversations = [
            (c.language, c.turns)
            for c in load_conversations(ROOT / "scripts" / "bench_conversations.yml")
        ]
        yield Scaled(
            stack, database_url, proxy, action_proxy, telegram, actions, rasas, apps, http,
            conversations,
        )  # fmt: skip
    finally:
        if stack is not None:
            await asyncio.to_thread(stack.stop_all)
        await http.close()
        await telegram.stop()
        await proxy.stop()
        if action_proxy is not None:
            await action_proxy.stop()
        await drop_postgres_database(POSTGRES_URL, database_url)


# --- counting -----------------------------------------------------------------------------


async def settle(scaled: Scaled, load: Load, timeout: float = 300) -> None:
    """Wait until the load's chats have nothing pending and deliveries stopped for 3 s."""
    chats = [str(c) for c in load.chats()]
    engine = create_engine(scaled.database_url)
    deadline = time.monotonic() + timeout
    quiet_since, seen = time.monotonic(), -1
    try:
        while time.monotonic() < deadline:
            async with engine.connect() as conn:
                ids = select(Contact.id).where(Contact.channel_user_id.in_(chats))
                pending = await conn.scalar(
                    select(func.count())
                    .select_from(InboundMessage)
                    .where(
                        InboundMessage.contact_id.in_(ids),
                        InboundMessage.status == InboundStatus.PENDING,
                    )
                )
                pending += await conn.scalar(
                    select(func.count())
                    .select_from(OutboundMessage)
                    .where(
                        OutboundMessage.contact_id.in_(ids),
                        OutboundMessage.status == OutboundStatus.PENDING,
                    )
                )
            delivered = len(scaled.telegram.sent)
            if delivered != seen:
                seen, quiet_since = delivered, time.monotonic()
            if not pending and time.monotonic() - quiet_since > 3:
                return
            await asyncio.sleep(0.5)
    finally:
        await engine.dispose()


async def _tracker_turns(scaled: Scaled, sender: str) -> list[str]:
    """The message ids of the user turns in a conversation's tracker, in order."""
    rasa = next(r for r in scaled.rasas if r.running)
    url = f"{rasa.url}/conversations/{sender}/tracker"
    params = {"token": scaled.stack.rasa_token, "include_events": "ALL"}
    async with scaled.http.get(url, params=params) as resp:
        resp.raise_for_status()
        tracker = await resp.json()
    return [
        str((e.get("metadata") or {}).get("message_id"))
        for e in tracker.get("events", [])
        if e.get("event") == "user"
    ]


def _inbox_counts(load: Load, stored: Stored) -> Counter[str]:
    """What the webhooks accepted and the app stored and processed of the load's messages."""
    accepted = {s.update_id for s in load.sent if s.accepted}
    by_update = {int(m.external_id): m for m in stored.inbound}
    answered = {o.inbound_id for o in stored.outbound if o.inbound_id is not None}
    inbound = stored.inbound
    return Counter(
        sent=len(load.sent),
        accepted=len(accepted),
        refused_answers=sum(s.refused for s in load.sent),
        not_accepted=len(load.sent) - len(accepted),
        stored=len(by_update),
        acknowledged_not_stored=len(accepted - set(by_update)),
        processed=sum(m.status == InboundStatus.DONE for m in inbound),
        still_pending=sum(m.status == InboundStatus.PENDING for m in inbound),
        unanswered=sum(m.status == InboundStatus.DONE and m.id not in answered for m in inbound),
    )


async def _rasa_counts(scaled: Scaled, stored: Stored, counts: Counter[str]) -> None:
    """Rasa: every stored message exactly once, in the order it was sent, per conversation."""
    update_of = {str(m.id): int(m.external_id) for m in stored.inbound}
    in_trackers: set[str] = set()
    for contact in stored.contacts:
        turns = await _tracker_turns(scaled, contact.public_id)
        seen = Counter(turns)
        in_trackers |= set(turns)
        counts["rasa_turns"] += len(turns)
        counts["processed_twice"] += sum(n - 1 for n in seen.values() if n > 1)
        order = [update_of[t] for t in dict.fromkeys(turns) if t in update_of]
        counts["out_of_order"] += sum(1 for a, b in itertools.pairwise(order) if b < a)
    done = {str(m.id) for m in stored.inbound if m.status == InboundStatus.DONE}
    counts["never_reached_rasa"] = len(done - in_trackers)


def _delivery_counts(scaled: Scaled, chats: set[str], stored: Stored, counts: Counter[str]) -> None:
    """Delivery: every stored reply delivered once, in the order stored, per chat."""
    expected = {chat: [part for part, _ in want] for chat, want in stored.expected().items()}
    delivered: dict[str, list[str]] = defaultdict(list)
    for message in scaled.telegram.sent:
        chat = str(message["chat_id"])
        if chat in chats:
            delivered[chat].append(message["text"])
    for chat in chats:
        want, got = Counter(expected.get(chat, [])), Counter(delivered[chat])
        counts["replies_stored"] += sum(want.values())
        counts["replies_delivered"] += sum(got.values())
        counts["replies_duplicated"] += sum((got - want).values())
        counts["replies_undelivered"] += sum((want - got).values())
        first = list(dict.fromkeys(delivered[chat]))  # duplicates aside
        if [t for t in first if t in want] != list(dict.fromkeys(expected.get(chat, []))):
            counts["chats_delivered_out_of_order"] += 1


async def tally(scaled: Scaled, load: Load) -> dict[str, int]:
    """Count what happened to the load's messages and their replies (see the module doc)."""
    chats = {str(c) for c in load.chats()}
    stored = await stored_for(scaled.database_url, chats)
    counts = _inbox_counts(load, stored)
    await _rasa_counts(scaled, stored, counts)
    _delivery_counts(scaled, chats, stored, counts)
    for key in ("processed_twice", "out_of_order", "replies_duplicated", "replies_undelivered"):
        counts[key] += 0  # present when zero
    counts["chats_delivered_out_of_order"] += 0
    counts["lost"] = (
        counts["not_accepted"]
        + counts["acknowledged_not_stored"]
        + counts["still_pending"]
        + counts["unanswered"]
        + counts["replies_undelivered"]
    )
    counts["duplicated"] = counts["processed_twice"] + counts["replies_duplicated"]
    return dict(counts)


@contextlib.asynccontextmanager
async def timed(name: str, counts: dict[str, Any]) -> AsyncIterator[None]:
    started = time.monotonic()
    yield
    counts[f"{name}_seconds"] = round(time.monotonic() - started, 1)
