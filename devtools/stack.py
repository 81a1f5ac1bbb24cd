"""A harness for the whole stack: start, stop, kill and restart its processes, and load it.

Used by `make bench` and by the scale-out and fault suites. Every process listens on a
free port of 127.0.0.1 and writes its own log file under the stack's work directory.

    stack = Stack(workdir, database_url)          # the database must be migrated (migrate())
    actions = stack.action_server()
    rasa = stack.rasa()                           # or several: stack.rasa("rasa2", endpoints=...)
    telegram = FakeTelegram(); await telegram.start()
    app = stack.app(rasa_url=rasa.url, telegram=telegram)  # webhook mode, as in production
    stack.start_all(); await stack.ready()        # wait_ready() outside asyncio
    load = TelegramLoad(telegram, [app.url + WEBHOOK_PATH], stack.webhook_secret, http)
    turns = await load.run(conversations, concurrency=10, duration=30)
    tally = await reconcile(database_url, turns, load.received)   # lost / duplicated / order
    app.kill(); app.restart()                     # a crash and a recovery
    stack.peak_rss_mb()                           # {"rasa": 812.4, ...}
    stack.stop_all()

Lost and duplicated replies are counted against the database, not guessed from timing:
every delivered Telegram message is matched to the stored outbound row it came from
(by chat and text, in order), and that row names the inbound message, hence the update,
it answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from devtools.model import ROOT, SERVE_ENV, ensure_model, rasa_env

logger = logging.getLogger(__name__)

WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
TELEGRAM_TOKEN = "123456:TEST-TOKEN"  # noqa: S105 - the fake Bot API's token, not a secret
PER_CHAT_INTERVAL = 1.0  # the outbox sends at most one message per second per chat


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) with linear interpolation between ranks; None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


# --- processes ------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    """All descendants of `pid` (read from /proc)."""
    parents: dict[int, list[int]] = defaultdict(list)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents[ppid].append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def peak_rss_kb(pid: int) -> int:
    """VmHWM (peak resident set size) of one live process, in kB; 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one live process, in seconds; 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Service:
    """One process of the stack (Rasa, action server or app) on its own port and log file."""

    name: str
    argv: list[str]
    env: dict[str, str]
    port: int
    ready_url: str
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    started_at: float | None = None  # time.monotonic() of the last start
    ready_seconds: float | None = None  # from the last start to ready
    peak_mb: float = 0.0  # highest peak RSS seen over every run of this service

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        """Start the process (in its own process group, so that kill reaches its workers)."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        log = self.log_path.open("ab")
        try:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        self.started_at = time.monotonic()
        self.ready_seconds = None
        logger.info("started %s (pid %s) on port %s", self.name, self.proc.pid, self.port)

    def is_ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.ready_url, timeout=2) as resp:  # noqa: S310
                return resp.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def wait_ready(self, timeout: float = 300) -> float:
        """Block until the ready URL answers 200; return the seconds since the start."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise RuntimeError(f"{self.name} exited; see {self.log_path}:\n{self.tail()}")
            if self.is_ready():
                assert self.started_at is not None
                self.ready_seconds = time.monotonic() - self.started_at
                return self.ready_seconds
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout}s at {self.ready_url}")

    async def ready(self, within: float = 300) -> float:
        """`wait_ready` for asyncio code (the fake Bot API must keep answering meanwhile)."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if not self.running:
                raise RuntimeError(f"{self.name} exited; see {self.log_path}:\n{self.tail()}")
            if await asyncio.to_thread(self.is_ready):
                assert self.started_at is not None
                self.ready_seconds = time.monotonic() - self.started_at
                return self.ready_seconds
            await asyncio.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {within}s at {self.ready_url}")

    def pids(self) -> list[int]:
        if not self.running:
            return []
        assert self.proc is not None
        return [self.proc.pid, *_children(self.proc.pid)]

    def cpu_seconds(self) -> float:
        """CPU time used so far by the process and its live workers."""
        return sum(cpu_seconds(pid) for pid in self.pids())

    def peak_rss_mb(self) -> float:
        """Peak RSS of the process and its workers (sum of their VmHWM), in MB.

        Read live from /proc; the highest value seen is kept across restarts.
        """
        now = sum(peak_rss_kb(pid) for pid in self.pids()) / 1024
        self.peak_mb = max(self.peak_mb, now)
        return self.peak_mb

    def _signal_group(self, sig: int) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def stop(self, timeout: float = 20) -> None:
        """Stop gracefully (SIGTERM), then SIGKILL after `timeout` seconds."""
        if not self.running:
            return
        self.peak_rss_mb()
        assert self.proc is not None
        self._signal_group(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            self.proc.wait()
        logger.info("stopped %s", self.name)

    def kill(self) -> None:
        """Crash it: SIGKILL to the whole process group, no clean-up."""
        if not self.running:
            return
        self.peak_rss_mb()
        assert self.proc is not None
        self._signal_group(signal.SIGKILL)
        self.proc.wait()
        logger.info("killed %s", self.name)

    def restart(self, *, wait: bool = True, timeout: float = 300) -> float | None:
        """Stop (if running) and start again on the same port; wait until ready if asked."""
        self.stop()
        self.start()
        return self.wait_ready(timeout) if wait else None

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


HEADER = "X-Action-Token"  # the action server's shared secret (rasa_sdk_plugins)
# Rasa's plain REST channel beside the app's own (benchmarks: "Rasa alone").
DEV_CREDENTIALS = ROOT / "rasa_project" / "credentials.dev.yml"


@dataclass
class Stack:
    """Builds the stack's services; each one is started, stopped and killed on its own.

    `database_url` is used by the action server and the apps (migrate it first with
    `migrate()`); each Rasa server keeps its conversations in a SQLite tracker store of its
    own (rasa_project/endpoints.yml, as `make run`) unless an endpoints file says otherwise
    (`endpoints_file()` writes one).
    """

    workdir: Path
    database_url: str
    model: Path | None = None
    rasa_token: str = field(default_factory=lambda: secrets.token_hex(24))
    action_token: str = field(default_factory=lambda: secrets.token_hex(24))
    webhook_secret: str = field(default_factory=lambda: secrets.token_hex(16))
    env: dict[str, str] = field(default_factory=dict)  # added to every process's environment
    services: dict[str, Service] = field(default_factory=dict)
    action_url: str | None = None  # the first action server's webhook

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)

    def _env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = rasa_env()
        env.update(
            DATABASE_URL=self.database_url,
            PYTHONUNBUFFERED="1",
            PTB_TIMEDELTA="1",
            SANIC_HOST="127.0.0.1",
            RASA_TOKEN=self.rasa_token,
            ACTION_SERVER_TOKEN=self.action_token,
        )
        if self.action_url:
            env["ACTION_SERVER_URL"] = self.action_url
        env.update(self.env)
        env.update(extra or {})
        return env

    def _add(self, service: Service) -> Service:
        if service.name in self.services:
            raise ValueError(f"a service named {service.name!r} exists already")
        self.services[service.name] = service
        return service

    def action_server(self, name: str = "actions", env: dict[str, str] | None = None) -> Service:
        """The rasa-sdk action server (actions/); the Rasa servers added later call it."""
        port = free_port()
        url = f"http://127.0.0.1:{port}/webhook"
        self.action_url = self.action_url or url
        argv = [sys.executable, "-m", "rasa_sdk", "--actions", "actions", "-p", str(port)]
        return self._add(
            Service(
                name,
                argv,
                self._env(env),
                port,
                f"http://127.0.0.1:{port}/health",
                self.workdir / f"{name}.log",
            )
        )

    def rasa(
        self,
        name: str = "rasa",
        *,
        endpoints: Path | None = None,
        model: Path | None = None,
        env: dict[str, str] | None = None,
        api: bool = False,
        credentials: Path | None = None,
    ) -> Service:
        """A Rasa server with the trained model, as `make run` serves it.

        By default its conversations go to a SQLite tracker store of its own in the stack's
        folder (rasa_project/endpoints.yml); `endpoints` names another file. `api`: also
        Rasa's HTTP API behind the token (tools that read trackers or time NLU alone);
        `credentials`: e.g. credentials.dev.yml for the plain REST channel.
        """
        if self.action_url is None and env is None:
            raise RuntimeError("add the action server first (its URL goes to Rasa)")
        port = free_port()
        model = model or self.model or ensure_model()
        argv = [
            str(ROOT / ".venv-rasa" / "bin" / "rasa"), "run", "-i", "127.0.0.1", "-p", str(port),
            "-m", str(model),
            "--endpoints", str(endpoints or ROOT / "rasa_project" / "endpoints.yml"),
            "--credentials", str(credentials or ROOT / "rasa_project" / "credentials.yml"),
        ]  # fmt: skip
        if api:
            argv += ["--enable-api", "--auth-token", self.rasa_token]
        from pmi.db import private_file

        tracker = self.workdir / f"{name}-tracker.db"
        private_file(tracker)  # as `make run`: the worker's conversations, owner only
        extra = {"RASA_TRACKER_DB": str(tracker), **SERVE_ENV}
        return self._add(
            Service(
                name,
                argv,
                self._env({**extra, **(env or {})}),
                port,
                f"http://127.0.0.1:{port}/webhooks/relay/",  # 200 once the model is loaded
                self.workdir / f"{name}.log",
            )
        )

    def app(
        self,
        name: str = "app",
        *,
        rasa_url: str,
        telegram: Any | None = None,
        webhook: bool = True,
        env: dict[str, str] | None = None,
    ) -> Service:
        """The app (`python -m bot`); with `telegram` (a FakeTelegram) its Telegram channel.

        Webhook mode by default (the production mode): updates are POSTed to
        `service.url + WEBHOOK_PATH` with `stack.webhook_secret`; `webhook=False` polls.
        """
        port = free_port()
        extra = {
            "APP_HOST": "127.0.0.1",
            "APP_PORT": str(port),
            "RASA_URL": rasa_url,
        }
        if telegram is not None:
            extra.update(TELEGRAM_BOT_TOKEN=telegram.token, TELEGRAM_BASE_URL=telegram.base_url)
            if webhook:
                extra.update(
                    PUBLIC_URL=f"http://127.0.0.1:{port}",
                    TELEGRAM_WEBHOOK_SECRET=self.webhook_secret,
                )
        extra.update(env or {})
        return self._add(
            Service(
                name,
                [sys.executable, "-m", "bot"],
                self._env(extra),
                port,
                f"http://127.0.0.1:{port}/readyz",
                self.workdir / f"{name}.log",
            )
        )

    def endpoints_file(
        self,
        name: str,
        *,
        tracker_store: dict[str, Any] | None = None,
        lock_store: dict[str, Any] | None = None,
    ) -> Path:
        """Write a Rasa endpoints file (action server + optional tracker/lock store)."""
        data: dict[str, Any] = {
            "action_endpoint": {
                "url": "${ACTION_SERVER_URL}",
                "headers": {HEADER: "${ACTION_SERVER_TOKEN}"},
            }
        }
        if tracker_store:
            data["tracker_store"] = tracker_store
        if lock_store:
            data["lock_store"] = lock_store
        path = self.workdir / f"{name}.endpoints.yml"
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        return path

    def start_all(self) -> None:
        for service in self.services.values():
            if not service.running:
                service.start()

    def wait_ready(self, timeout: float = 300) -> dict[str, float]:
        """Wait for every running service; return the seconds each took from its start."""
        return {s.name: s.wait_ready(timeout) for s in self.services.values() if s.proc is not None}

    async def ready(self, within: float = 300) -> dict[str, float]:
        """`wait_ready` for asyncio code: all started services, concurrently."""
        started = [s for s in self.services.values() if s.proc is not None]
        times = await asyncio.gather(*(s.ready(within) for s in started))
        return {s.name: t for s, t in zip(started, times, strict=True)}

    def stop_all(self) -> None:
        # Apps first (they call Rasa), then Rasa, then the action server.
        order = sorted(
            self.services.values(),
            key=lambda s: 0 if s.argv[-1] == "bot" else 2 if "rasa_sdk" in s.argv else 1,
        )
        for service in order:
            service.stop()

    def peak_rss_mb(self) -> dict[str, float]:
        return {name: round(s.peak_rss_mb(), 1) for name, s in self.services.items()}

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop_all()


def migrate(database_url: str) -> None:
    """Bring a database to the current Alembic head (subprocess: Alembic's own env)."""
    env = dict(os.environ, DATABASE_URL=database_url, PYTHONPATH=str(ROOT))
    subprocess.run(
        [str(ROOT / ".venv" / "bin" / "alembic"), "upgrade", "head"],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


async def create_postgres_database(admin_url: str, name: str | None = None) -> str:
    """Create a fresh PostgreSQL database next to `admin_url`'s; return its URL."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from pmi.db import create_engine

    name = name or f"pmi_bench_{secrets.token_hex(4)}"
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await engine.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


async def drop_postgres_database(admin_url: str, url: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from pmi.db import create_engine

    name = make_url(url).database
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await engine.dispose()


# --- conversations and load ---------------------------------------------------------


@dataclass(frozen=True)
class Conversation:
    """A scripted worker conversation: the worker's turns, in order."""

    name: str
    language: str
    turns: tuple[str, ...]


def load_conversations(path: Path) -> list[Conversation]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [
        Conversation(c["name"], c["language"], tuple(str(t) for t in c["turns"]))
        for c in data["conversations"]
    ]


@dataclass
class Turn:
    """One worker message sent as a Telegram update, and the replies that answered it."""

    chat_id: int
    update_id: int
    text: str
    sent_at: float  # time.monotonic() just before the update was posted
    sent_wall: float = field(default_factory=time.time)  # the same instant, wall clock
    accepted_at: float | None = None  # the webhook answered 200
    post_attempts: int = 0
    replies: list[float] = field(default_factory=list)  # arrival times (set by reconcile)

    @property
    def first_reply_seconds(self) -> float | None:
        return min(self.replies) - self.sent_at if self.replies else None

    @property
    def last_reply_seconds(self) -> float | None:
        return max(self.replies) - self.sent_at if self.replies else None


def _fresh_id() -> int:
    """A start for ids that is unique per generator (microseconds since the epoch)."""
    time.sleep(1e-6)
    return time.time_ns() // 1000


@dataclass(frozen=True)
class Delivered:
    """A message the fake Bot API received (a reply sent to a worker)."""

    chat_id: int
    at: float
    text: str


@dataclass
class _Chat:
    received: list[Delivered] = field(default_factory=list)
    event: asyncio.Event = field(default_factory=asyncio.Event)


class TelegramLoad:
    """Drives K concurrent worker conversations through the app's Telegram webhook.

    Each of the K slots plays scripted conversations one after another, each in a new
    chat, like a person: it sends a turn, waits for the first reply, then waits until the
    replies stop (`settle` seconds without a new one, longer than the outbox's one message
    per second per chat) before sending the next turn. Updates go to the webhook URLs in
    turn per chat; if one does not answer 200 the next is tried (as a load balancer would),
    with the same update_id, until `reply_timeout`.
    """

    def __init__(
        self,
        telegram: Any,
        webhook_urls: Sequence[str],
        secret: str,
        http: aiohttp.ClientSession,
        *,
        settle: float = 1.3,
        reply_timeout: float = 60.0,
        first_chat_id: int | None = None,
        first_update_id: int | None = None,
    ) -> None:
        self.webhook_urls = list(webhook_urls)
        self._secret = secret
        self._http = http
        self.settle = settle
        self.reply_timeout = reply_timeout
        # By default ids no earlier run or other generator used on the same database: a
        # reused update id would be taken for a retry (and dropped), a chat id for a contact.
        self._chat_ids = itertools.count(first_chat_id or _fresh_id())
        self._update_ids = itertools.count(first_update_id or _fresh_id())
        self._chats: dict[int, _Chat] = {}
        self.turns: list[Turn] = []
        telegram.on_send.append(self._on_send)

    def _on_send(self, params: dict[str, Any]) -> None:
        chat = self._chats.get(int(params["chat_id"]))
        if chat is not None:
            chat.received.append(
                Delivered(int(params["chat_id"]), time.monotonic(), params["text"])
            )
            chat.event.set()

    @property
    def received(self) -> list[Delivered]:
        return [d for chat in self._chats.values() for d in chat.received]

    async def post(self, update: dict[str, Any], deadline: float) -> tuple[float | None, int]:
        """POST one update, failing over between webhook URLs; (accepted time, attempts)."""
        chat_id = update["message"]["chat"]["id"]
        for attempts in itertools.count(1):
            url = self.webhook_urls[(chat_id + attempts - 1) % len(self.webhook_urls)]
            try:
                async with self._http.post(
                    url, json=update, headers={SECRET_HEADER: self._secret}
                ) as resp:
                    await resp.read()
                    if resp.status == 200:
                        return time.monotonic(), attempts
            except (aiohttp.ClientError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                return None, attempts
            await asyncio.sleep(0.2)
        raise AssertionError("unreachable")

    def new_chat(self) -> int:
        """A new chat id whose replies are recorded."""
        chat_id = next(self._chat_ids)
        self._chats[chat_id] = _Chat()
        return chat_id

    def deliveries(self, chat_id: int) -> list[Delivered]:
        """The messages delivered to one chat so far, in arrival order."""
        return list(self._chats[chat_id].received)

    async def send(self, chat_id: int, text: str, language: str = "id") -> Turn:
        """Post one worker message (no waiting for replies); the Turn records it."""
        update_id = next(self._update_ids)
        user = {"id": chat_id, "is_bot": False, "first_name": "Worker", "language_code": language}
        update = {
            "update_id": update_id,
            "message": {
                "message_id": update_id,
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private"},
                "from": user,
                "text": text,
            },
        }
        turn = Turn(chat_id, update_id, text, time.monotonic())
        self.turns.append(turn)
        deadline = turn.sent_at + self.reply_timeout
        turn.accepted_at, turn.post_attempts = await self.post(update, deadline)
        return turn

    async def turn(self, chat_id: int, text: str, language: str) -> Turn:
        """Send one message and wait for its replies to arrive and stop."""
        chat = self._chats[chat_id]
        seen = len(chat.received)
        turn = await self.send(chat_id, text, language)
        if turn.accepted_at is None:
            return turn
        deadline = turn.sent_at + self.reply_timeout
        # The first reply, then quiet for `settle` seconds.
        while True:
            if len(chat.received) > seen:
                wait = chat.received[-1].at + self.settle - time.monotonic()
            else:
                wait = deadline - time.monotonic()
            if wait <= 0:
                return turn
            chat.event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(chat.event.wait(), timeout=wait)

    async def conversation(self, conversation: Conversation, stop_at: float | None) -> int:
        chat_id = self.new_chat()
        done = 0
        for text in conversation.turns:
            if stop_at is not None and time.monotonic() >= stop_at:
                break
            await self.turn(chat_id, text, conversation.language)
            done += 1
        return done

    async def run(
        self,
        conversations: Sequence[Conversation],
        concurrency: int,
        *,
        duration: float | None = None,
        per_slot: int | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> list[Turn]:
        """Run `concurrency` slots for `duration` seconds or `per_slot` conversations each.

        With a duration, no new turn starts after it (turns under way finish). Returns the
        turns of this run; their reply times are filled in by `reconcile`.
        """
        if duration is None and per_slot is None:
            raise ValueError("give a duration or a number of conversations per slot")
        start = len(self.turns)
        stop_at = time.monotonic() + duration if duration is not None else None
        scripts = itertools.cycle(conversations)

        async def slot(index: int) -> None:
            # Slots start spread over the first second, and each at a different script.
            await asyncio.sleep(index / max(concurrency, 1))
            for _ in range(index):
                next(scripts)
            count = 0
            while per_slot is None or count < per_slot:
                if stop_at is not None and time.monotonic() >= stop_at:
                    return
                await self.conversation(next(scripts), stop_at)
                count += 1

        reporter = asyncio.create_task(self._report(start, progress)) if progress else None
        try:
            await asyncio.gather(*(slot(i) for i in range(concurrency)))
        finally:
            if reporter:
                reporter.cancel()
        return self.turns[start:]

    async def _report(self, start: int, progress: Callable[[str], None]) -> None:
        began = time.monotonic()
        while True:
            await asyncio.sleep(5)
            elapsed = time.monotonic() - began
            sent = len(self.turns) - start
            progress(f"{elapsed:5.0f}s  {sent} messages sent, {sent / elapsed:.1f}/s")

    async def drain(self, turns: Sequence[Turn], within: float) -> None:
        """Wait (up to `within` s) until every chat of `turns` had a reply to its last turn."""
        deadline = time.monotonic() + within
        last_turn: dict[int, Turn] = {t.chat_id: t for t in turns}
        while time.monotonic() < deadline:
            if all(
                any(d.at >= t.sent_at for d in self._chats[c].received)
                for c, t in last_turn.items()
            ):
                return
            await asyncio.sleep(0.2)


@dataclass
class Tally:
    """What reached the workers, checked against what the app stored."""

    messages: int = 0  # worker messages (updates) sent
    answered: int = 0  # ... that got at least one reply delivered
    lost: int = 0  # ... that got none (not stored, not answered, or never delivered)
    not_accepted: int = 0  # updates no webhook accepted in time
    not_stored: int = 0  # updates accepted but not in the inbox
    replies_stored: int = 0  # outbound messages (parts) stored for these chats
    replies_delivered: int = 0  # messages the fake Bot API received for these chats
    undelivered: int = 0  # stored replies never delivered
    duplicated: int = 0  # deliveries beyond the stored replies (a reply sent twice)
    out_of_order: int = 0  # deliveries that came after a later reply of the same chat
    unmatched: int = 0  # deliveries matching no stored reply

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


async def reconcile(
    database_url: str, turns: Sequence[Turn], received: Iterable[Delivered]
) -> Tally:
    """Match every delivered message to its stored reply; count lost, duplicated, out of order.

    Fills in each turn's `replies` (arrival times of the replies that answer its update).
    """
    from sqlalchemy import select

    from bot.telegram import MAX_MESSAGE, split_text
    from pmi.db import create_engine
    from pmi.models import Contact, InboundMessage, OutboundMessage

    chats = {str(t.chat_id) for t in turns}
    by_update = {t.update_id: t for t in turns}
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            contacts = dict(
                (
                    await conn.execute(
                        select(Contact.id, Contact.channel_user_id).where(
                            Contact.channel == "telegram"
                        )
                    )
                ).all()
            )
            wanted = {cid for cid, user in contacts.items() if user in chats}
            inbound = {
                row.id: int(row.external_id)
                for row in await conn.execute(
                    select(InboundMessage.id, InboundMessage.external_id).where(
                        InboundMessage.contact_id.in_(wanted), InboundMessage.channel == "telegram"
                    )
                )
            }
            outbound = (
                await conn.execute(
                    select(
                        OutboundMessage.contact_id,
                        OutboundMessage.inbound_id,
                        OutboundMessage.text,
                    )
                    .where(OutboundMessage.contact_id.in_(wanted))
                    .order_by(OutboundMessage.id)
                )
            ).all()
    finally:
        await engine.dispose()

    # Expected deliveries per chat, in order: each stored reply's parts.
    expected: dict[int, list[tuple[str, int | None]]] = defaultdict(list)
    for row in outbound:
        update_id = inbound.get(row.inbound_id) if row.inbound_id is not None else None
        for part in split_text(row.text, MAX_MESSAGE):
            expected[int(contacts[row.contact_id])].append((part, update_id))

    tally = Tally(messages=len(turns))
    tally.replies_stored = sum(len(v) for k, v in expected.items() if str(k) in chats)
    stored_updates = set(inbound.values())
    delivered: dict[int, list[Delivered]] = defaultdict(list)
    for d in received:
        if str(d.chat_id) in chats:
            delivered[d.chat_id].append(d)
    for turn in turns:
        turn.replies = []
    for chat_id, items in delivered.items():
        items.sort(key=lambda d: d.at)
        want = expected.get(chat_id, [])
        used = [False] * len(want)
        highest = -1
        for d in items:
            tally.replies_delivered += 1
            index = next(
                (i for i, (text, _) in enumerate(want) if not used[i] and text == d.text), None
            )
            if index is None:
                if any(text == d.text for text, _ in want):
                    tally.duplicated += 1
                else:
                    tally.unmatched += 1
                continue
            used[index] = True
            if index < highest:
                tally.out_of_order += 1
            highest = max(highest, index)
            update_id = want[index][1]
            if update_id in by_update:
                by_update[update_id].replies.append(d.at)
        tally.undelivered += used.count(False)
    for chat_id, want in expected.items():
        if chat_id not in delivered and str(chat_id) in chats:
            tally.undelivered += len(want)
    for turn in turns:
        if turn.accepted_at is None:
            tally.not_accepted += 1
        elif turn.update_id not in stored_updates:
            tally.not_stored += 1
        if turn.replies:
            tally.answered += 1
    tally.lost = tally.messages - tally.answered
    return tally


# --- Rasa alone ----------------------------------------------------------------------


@dataclass
class RestTurn:
    """One message sent straight to Rasa's REST channel."""

    sender: str
    text: str
    sent_at: float
    seconds: float | None = None  # None: failed
    replies: int = 0


async def rasa_rest_load(
    http: aiohttp.ClientSession,
    rasa_url: str,
    conversations: Sequence[Conversation],
    concurrency: int,
    *,
    duration: float | None = None,
    per_slot: int | None = None,
    settle: float = 1.3,
    prefix: str = "rest",
    request_timeout: float = 60.0,
) -> list[RestTurn]:
    """The same closed loop as `TelegramLoad`, straight to Rasa's `/webhooks/rest/webhook`.

    After each answer a slot waits as long as a worker on Telegram would before the next
    turn (`settle`, plus one second per extra reply: the outbox's per-chat pace), so that
    both see the same offered load at the same concurrency.
    """
    url = rasa_url.rstrip("/") + "/webhooks/rest/webhook"
    turns: list[RestTurn] = []
    stop_at = time.monotonic() + duration if duration is not None else None
    scripts = itertools.cycle(conversations)
    senders = itertools.count(1)
    client_timeout = aiohttp.ClientTimeout(total=request_timeout)

    async def one(sender: str, text: str, language: str) -> RestTurn:
        turn = RestTurn(sender, text, time.monotonic())
        turns.append(turn)
        payload = {
            "sender": sender,
            "message": text,
            "metadata": {"language": language, "channel": "telegram"},
        }
        try:
            async with http.post(url, json=payload, timeout=client_timeout) as resp:
                body = await resp.json() if resp.status == 200 else None
        except (aiohttp.ClientError, TimeoutError):
            body = None
        if isinstance(body, list):
            turn.seconds = time.monotonic() - turn.sent_at
            turn.replies = len(body)
        return turn

    async def slot(index: int) -> None:
        await asyncio.sleep(index / max(concurrency, 1))
        for _ in range(index):
            next(scripts)
        count = 0
        while per_slot is None or count < per_slot:
            if stop_at is not None and time.monotonic() >= stop_at:
                return
            conversation = next(scripts)
            sender = f"{prefix}-{next(senders)}-{secrets.token_hex(3)}"
            for text in conversation.turns:
                if stop_at is not None and time.monotonic() >= stop_at:
                    return
                turn = await one(sender, text, conversation.language)
                await asyncio.sleep(settle + max(turn.replies - 1, 0) * PER_CHAT_INTERVAL)
            count += 1

    await asyncio.gather(*(slot(i) for i in range(concurrency)))
    return turns
