"""`make bench`: what users feel. Writes reports/bench.md (tables, PNG plots) and bench.json.

Phases, each printed as it runs:
  1. accuracy: reports/nlu.json (`make eval-nlu`) and reports/langid.json (language bench);
  2. latency at 1, 10 and 100 concurrent conversations: a worker message through the whole
     path (fake Telegram update to the app's webhook, app, Rasa, actions, database, reply
     at the fake Bot API) against the same conversations sent straight to Rasa's REST
     webhook, in the same run, on the same Rasa server; the 100-conversation window is
     also the throughput run (lost and duplicated replies counted against the database);
  3. what a Rasa turn costs: NLU alone, rule-only turns, custom-action turns, and the
     tracker store (in memory vs SQL on PostgreSQL with a Redis lock store);
  4. start-up: `make run` with nothing to rebuild, a message sent before Rasa is ready;
  5. peak RSS of every process.

Usage: python -m scripts.bench [--quick] [--with-eval] [--database postgresql|sqlite]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import platform
import resource
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from devtools.model import ROOT, ensure_model
from devtools.stack import (
    DEV_CREDENTIALS,
    WEBHOOK_PATH,
    Conversation,
    RestTurn,
    Stack,
    TelegramLoad,
    Turn,
    create_postgres_database,
    drop_postgres_database,
    free_port,
    load_conversations,
    migrate,
    percentile,
    rasa_rest_load,
    reconcile,
)

logger = logging.getLogger(__name__)

REPORTS = ROOT / "reports"
CONVERSATIONS = ROOT / "scripts" / "bench_conversations.yml"
POSTGRES_ADMIN_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS = ("127.0.0.1", 6379)
CONCURRENCY = (1, 10, 100)
TARGET_P95_RATIO = 1.3  # at 1 and 10 conversations
TARGET_THROUGHPUT_RATIO = 0.9
CLOCK = time.monotonic()


def say(message: str) -> None:
    """Progress line with the elapsed time."""
    print(f"[bench {time.monotonic() - CLOCK:6.0f}s] {message}", flush=True)


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
    except OSError:
        return "unknown"
    return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def summary(values: Sequence[float]) -> dict[str, float | int | None]:
    """n, p50, p95, p99 and mean, in milliseconds."""
    ms = [v * 1000 for v in values]

    def r(v: float | None) -> float | None:
        return None if v is None else round(v, 1)

    return {
        "n": len(ms),
        "p50_ms": r(percentile(ms, 50)),
        "p95_ms": r(percentile(ms, 95)),
        "p99_ms": r(percentile(ms, 99)),
        "mean_ms": r(sum(ms) / len(ms)) if ms else None,
    }


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def per_second(times: Sequence[float], start: float, seconds: float) -> float:
    """Events per second inside [start, start + seconds]."""
    return round(sum(1 for t in times if start <= t <= start + seconds) / seconds, 2)


def sustained(times: Sequence[float], start: float, seconds: float) -> float:
    """Events per second once the closed loop has filled: the first quarter is left out."""
    ramp = seconds / 4
    return per_second(times, start + ramp, seconds - ramp)


async def stages(database_url: str, turns: Sequence[Turn]) -> dict[str, Any]:
    """Where an answered message's time goes, from the app's own timestamps (medians, ms).

    posted -> stored (webhook) -> processed (relay + Rasa + actions) -> reply sent (outbox)
    -> delivered (seen by the fake Bot API).
    """
    from sqlalchemy import select

    from pmi.db import create_engine
    from pmi.models import InboundMessage, OutboundMessage

    by_update = {str(t.update_id): t for t in turns if t.replies}
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(
                        InboundMessage.external_id,
                        InboundMessage.received_at,
                        InboundMessage.processed_at,
                        OutboundMessage.created_at,
                        OutboundMessage.sent_at,
                    )
                    .join(OutboundMessage, OutboundMessage.inbound_id == InboundMessage.id)
                    .where(
                        InboundMessage.channel == "telegram",
                        InboundMessage.external_id.in_(list(by_update)),
                    )
                    .order_by(OutboundMessage.id)
                )
            ).all()
    finally:
        await engine.dispose()
    first: dict[str, Any] = {}
    for row in rows:
        first.setdefault(row.external_id, row)  # the first reply of each message
    parts: dict[str, list[float]] = {
        "webhook_to_stored": [],
        "stored_to_processed": [],
        "processed_to_sent": [],
        "sent_to_delivered": [],
    }
    for update_id, row in first.items():
        turn = by_update[update_id]
        if None in (row.received_at, row.processed_at, row.sent_at):
            continue
        delivered_wall = turn.sent_wall + (min(turn.replies) - turn.sent_at)
        received, processed, sent = (
            row.received_at.timestamp(),
            row.processed_at.timestamp(),
            row.sent_at.timestamp(),
        )
        parts["webhook_to_stored"].append(received - turn.sent_wall)
        parts["stored_to_processed"].append(processed - received)
        parts["processed_to_sent"].append(sent - processed)
        parts["sent_to_delivered"].append(delivered_wall - sent)
    return {k: summary(v) for k, v in parts.items()}


def timeline(times: Sequence[float], start: float, seconds: float, step: float = 5) -> list[float]:
    """Events per second in consecutive windows of `step` seconds."""
    buckets = Counter(int((t - start) // step) for t in times if start <= t <= start + seconds)
    return [round(buckets.get(i, 0) / step, 2) for i in range(int(seconds // step))]


# --- accuracy ------------------------------------------------------------------------


def accuracy(with_eval: bool, run_missing: bool = True) -> dict[str, Any]:
    """The NLU and language-detection figures, evaluated only if missing (or asked)."""
    nlu_path, langid_path = REPORTS / "nlu.json", REPORTS / "langid.json"
    if with_eval or (run_missing and not nlu_path.exists()):
        say("accuracy: running `make eval-nlu` (slow the first time: Rasa's default pipeline)")
        subprocess.run(["make", "--no-print-directory", "eval-nlu"], cwd=ROOT, check=True)
    langid_script = ROOT / "scripts" / "bench_langid.py"
    if (with_eval or (run_missing and not langid_path.exists())) and langid_script.exists():
        say("accuracy: running the language-detection bench (scripts/bench_langid.py)")
        subprocess.run([sys.executable, "-m", "scripts.bench_langid"], cwd=ROOT, check=True)
    nlu = json.loads(nlu_path.read_text()) if nlu_path.exists() else {}
    langid = json.loads(langid_path.read_text()) if langid_path.exists() else {}
    say(
        f"accuracy: NLU macro-F1 {nlu.get('nlu_macro_f1')}, emergency recall "
        f"{nlu.get('emergency_recall')}, language id {langid.get('langid_accuracy')} "
        f"(raw langdetect {langid.get('langdetect_raw_accuracy')})"
    )
    return {"nlu": nlu, "langid": langid}


# --- latency and throughput ------------------------------------------------------------


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


def cpu_per_message(
    before: dict[str, float], after: dict[str, float], messages: int
) -> dict[str, float]:
    """Milliseconds of CPU per message of each process between two snapshots."""
    return {
        name: round(1000 * (after[name] - before.get(name, 0.0)) / max(messages, 1), 1)
        for name in after
    }


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


# --- what a Rasa turn costs -------------------------------------------------------------


def rule_actions() -> dict[str, list[str]]:
    """Intent -> the actions its rule runs (outside forms), from rasa_project/data/rules."""
    found: dict[str, list[str]] = {}
    for path in sorted((ROOT / "rasa_project" / "data" / "rules").glob("*.yml")):
        for rule in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("rules", []):
            steps = rule.get("steps") or []
            if steps and "intent" in steps[0]:
                actions = [s["action"] for s in steps[1:] if "action" in s]
                found.setdefault(steps[0]["intent"], actions)
    return found


async def rasa_costs(
    http: aiohttp.ClientSession,
    stack: Stack,
    rasa_url: str,
    conversations: Sequence[Conversation],
    seconds: float,
    postgres: bool,
) -> dict[str, Any]:
    """Per-turn cost of NLU, rule-only and custom-action turns, and of the tracker store."""
    token = stack.rasa_token
    texts = [(t, c.language) for c in conversations for t in c.turns]
    rules = rule_actions()
    parse_s: list[float] = []
    kind_of: dict[str, str] = {}
    say(f"rasa costs: NLU alone (/model/parse) on {len(texts)} messages, one at a time")
    for text, _ in texts:
        started = time.monotonic()
        async with http.post(
            f"{rasa_url}/model/parse", params={"token": token}, json={"text": text}
        ) as resp:
            body = await resp.json()
        parse_s.append(time.monotonic() - started)
        actions = rules.get(body["intent"]["name"], [])
        if not actions:
            kind_of[text] = "other (form or fallback)"
        elif all(a.startswith("utter_") for a in actions):
            kind_of[text] = "rule, response only"
        else:
            kind_of[text] = "rule, custom action"
    say("rasa costs: full turns one at a time, by kind")
    by_kind: dict[str, list[float]] = {}
    for i, (text, language) in enumerate(texts):
        sender = f"cost-{i}-{secrets.token_hex(3)}"
        payload = {"sender": sender, "message": text, "metadata": {"language": language}}
        started = time.monotonic()
        async with http.post(f"{rasa_url}/webhooks/rest/webhook", json=payload) as resp:
            await resp.read()
        by_kind.setdefault(kind_of[text], []).append(time.monotonic() - started)
    costs: dict[str, Any] = {
        "nlu_parse": summary(parse_s),
        "turn_by_kind": {k: summary(v) for k, v in sorted(by_kind.items())},
        "policies": policies_note(),
    }
    say(f"rasa costs: saturation (no think time, 20 conversations, {seconds:.0f}s), in memory")
    costs["saturation_in_memory"] = await saturation(http, rasa_url, conversations, seconds)
    if postgres and reachable(*REDIS):
        tracker_url = await create_postgres_database(POSTGRES_ADMIN_URL)
        from sqlalchemy.engine import make_url

        db = make_url(tracker_url)
        endpoints = stack.endpoints_file(
            "rasa-sql",
            tracker_store={
                "type": "SQL",
                "dialect": "postgresql",
                "url": db.host,
                "port": db.port or 5432,
                "db": db.database,
                "username": db.username,
            },
            lock_store={"type": "redis", "url": REDIS[0], "port": REDIS[1], "db": 3},
        )
        rasa_sql = stack.rasa("rasa-sql", endpoints=endpoints, credentials=DEV_CREDENTIALS)
        say("rasa costs: a second Rasa with a PostgreSQL tracker store and a Redis lock store")
        rasa_sql.start()
        try:
            await rasa_sql.ready()
            await rasa_rest_load(http, rasa_sql.url, conversations, 2, per_slot=1, settle=0)
            say(f"rasa costs: saturation, SQL tracker + Redis lock, {seconds:.0f}s")
            costs["saturation_sql_redis"] = await saturation(
                http, rasa_sql.url, conversations, seconds
            )
            rasa_sql.peak_rss_mb()
        finally:
            rasa_sql.stop()
            await drop_postgres_database(POSTGRES_ADMIN_URL, tracker_url)
    else:
        costs["saturation_sql_redis"] = None
    variants = REPORTS / "bench_policies.json"  # `make bench-policies`, if it was run
    costs["policy_variants"] = json.loads(variants.read_text()) if variants.exists() else None
    mem, sql = costs["saturation_in_memory"], costs.get("saturation_sql_redis")
    say(
        f"  NLU p50 {costs['nlu_parse']['p50_ms']} ms; saturated Rasa {mem['msgs_per_s']} msgs/s "
        f"in memory, {sql['msgs_per_s'] if sql else '-'} msgs/s SQL + Redis"
    )
    return costs


async def saturation(
    http: aiohttp.ClientSession,
    rasa_url: str,
    conversations: Sequence[Conversation],
    seconds: float,
) -> dict[str, Any]:
    start = time.monotonic()
    turns = await rasa_rest_load(
        http, rasa_url, conversations, 20, duration=seconds, settle=0, prefix="sat"
    )
    done = [t.sent_at + t.seconds for t in turns if t.seconds is not None]
    return {
        "msgs_per_s": per_second(done, start, seconds),
        "latency": summary([t.seconds for t in turns if t.seconds is not None]),
        "failed": sum(1 for t in turns if t.seconds is None),
    }


def policies_note() -> dict[str, Any]:
    config = yaml.safe_load((ROOT / "rasa_project" / "config.yml").read_text(encoding="utf-8"))
    names = [p["name"] for p in config.get("policies") or []]
    return {
        "configured": names,
        "note": (
            "Only RulePolicy: each turn's next action is a rule lookup on the tracker (no "
            "TEDPolicy inference, no memoization), so the dialogue side costs little; a turn "
            "is NLU (DIET without transformer layers) + rule lookup + the action server "
            "call(s) + the tracker store. Adding TEDPolicy would add a neural inference per "
            "predicted action, growing with max_history."
        )
        if names == ["RulePolicy"]
        else "see rasa_project/config.yml",
    }


# --- start-up -------------------------------------------------------------------------


async def startup(
    http: aiohttp.ClientSession, telegram: Any, database_url: str, workdir: Path
) -> dict[str, Any]:
    """`make run` with nothing to rebuild: time to the app, to Rasa, to the first answer.

    A message is posted as soon as the app answers, normally before Rasa has loaded its
    model: it must be stored at once and answered once Rasa is up.
    """
    say("start-up: `make setup migrate model` first (not timed: nothing should change)")
    await asyncio.to_thread(
        subprocess.run,
        ["make", "--no-print-directory", "setup", "migrate", "model"],
        cwd=ROOT,
        env=dict(os.environ, DATABASE_URL=database_url),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    ports = {name: free_port() for name in ("APP_PORT", "RASA_PORT", "ACTION_PORT")}
    token, secret = secrets.token_hex(24), secrets.token_hex(16)
    env = dict(
        os.environ,
        **{k: str(v) for k, v in ports.items()},
        DATABASE_URL=database_url,
        RASA_TOKEN=token,
        RASA_URL=f"http://127.0.0.1:{ports['RASA_PORT']}",
        ACTION_SERVER_URL=f"http://127.0.0.1:{ports['ACTION_PORT']}/webhook",
        TELEGRAM_BOT_TOKEN=telegram.token,
        TELEGRAM_BASE_URL=telegram.base_url,
        PUBLIC_URL=f"http://127.0.0.1:{ports['APP_PORT']}",
        TELEGRAM_WEBHOOK_SECRET=secret,
    )
    app = f"http://127.0.0.1:{ports['APP_PORT']}"
    rasa_status = f"http://127.0.0.1:{ports['RASA_PORT']}/webhooks/relay/"  # model loaded
    load = TelegramLoad(telegram, [app + WEBHOOK_PATH], secret, http, reply_timeout=300)
    chat = load.new_chat()
    log = (workdir / "make-run.log").open("wb")
    say("start-up: `make run`")
    started = time.monotonic()
    proc = subprocess.Popen(  # noqa: ASYNC220 - starting it does not block
        ["make", "--no-print-directory", "run"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    result: dict[str, Any] = {}
    try:
        result["app_up_s"] = await poll(http, app + "/healthz", proc, started)
        rasa_ready_before = await ok(http, rasa_status)
        turn = await load.send(chat, "halo, mau tanya biaya kerja ke taiwan", "id")
        result["message_accepted_s"] = (
            round(turn.accepted_at - started, 2) if turn.accepted_at else None
        )
        result["rasa_ready_when_sent"] = rasa_ready_before
        result["stored_before_rasa_ready"] = await stored(database_url, turn.update_id)
        result["rasa_up_s"] = await poll(http, rasa_status, proc, started)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            tally = await reconcile(database_url, [turn], load.received)
            kinds = await reply_kinds(database_url, chat)
            if "reply" in kinds and tally.undelivered == 0:
                break
            await asyncio.sleep(0.5)
        deliveries = load.deliveries(chat)
        result["first_reply_s"] = round(deliveries[0].at - started, 2) if deliveries else None
        result["answer_s"] = round(deliveries[-1].at - started, 2) if deliveries else None
        result["replies"] = await reply_kinds(database_url, chat)
        result["tally"] = tally.as_dict()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
    say(
        f"  app up {result.get('app_up_s')}s, Rasa up {result.get('rasa_up_s')}s, first reply "
        f"{result.get('first_reply_s')}s, answer {result.get('answer_s')}s; stored before Rasa "
        f"was ready: {result.get('stored_before_rasa_ready')}"
    )
    return result


async def ok(http: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with http.get(url, timeout=aiohttp.ClientTimeout(total=2)) as resp:
            return resp.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


async def poll(
    http: aiohttp.ClientSession, url: str, proc: subprocess.Popen[bytes], started: float
) -> float:
    while not await ok(http, url):
        if proc.poll() is not None:
            raise RuntimeError("`make run` exited during start-up; see its log")
        if time.monotonic() - started > 600:
            raise RuntimeError(f"{url} not up after 600s")
        await asyncio.sleep(0.1)
    return round(time.monotonic() - started, 2)


async def stored(database_url: str, update_id: int) -> bool:
    from sqlalchemy import select

    from pmi.db import create_engine
    from pmi.models import InboundMessage

    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            found = await conn.scalar(
                select(InboundMessage.id).where(
                    InboundMessage.channel == "telegram",
                    InboundMessage.external_id == str(update_id),
                )
            )
    finally:
        await engine.dispose()
    return found is not None


async def reply_kinds(database_url: str, chat_id: int) -> list[str]:
    from sqlalchemy import select

    from pmi.db import create_engine
    from pmi.models import Contact, OutboundMessage

    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.scalars(
                select(OutboundMessage.kind)
                .join(Contact, Contact.id == OutboundMessage.contact_id)
                .where(Contact.channel == "telegram", Contact.channel_user_id == str(chat_id))
                .order_by(OutboundMessage.id)
            )
            return list(rows)
    finally:
        await engine.dispose()


# --- the run --------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from devtools.fake_telegram import FakeTelegram

    quick = args.quick
    seconds = {1: 15, 10: 15, 100: 20} if quick else {1: 60, 10: 60, 100: 60}
    saturation_s = 8 if quick else 20
    conversations = load_conversations(CONVERSATIONS)
    report: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "commit": git_commit(),
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "quick": quick,
        "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
    }
    load_avg = report["load_average_at_start"]
    say(f"{report['cpu_count']} cores, commit {report['commit']}, load average {load_avg}")
    model = ensure_model()
    postgres = args.database == "postgresql"
    workdir = Path(tempfile.mkdtemp(prefix="pmi-bench-"))
    say(f"logs in {workdir}")
    if postgres:
        database_url = await create_postgres_database(POSTGRES_ADMIN_URL)
    else:
        database_url = f"sqlite:///{workdir / 'bench.db'}"
    report["database"] = args.database
    migrate(database_url)
    telegram = FakeTelegram()
    await telegram.start()
    stack = Stack(workdir, database_url, model=model)
    stack.action_server()
    # The API (NLU alone) and the plain REST channel ("Rasa alone") are for the measurements.
    rasa = stack.rasa(api=True, credentials=DEV_CREDENTIALS)
    app = stack.app(rasa_url=rasa.url, telegram=telegram)
    try:
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=120)
        ) as http:
            say("starting the action server, Rasa and the app")
            stack.start_all()
            ready = await stack.ready()
            say("ready: " + ", ".join(f"{k} {v:.1f}s" for k, v in ready.items()))
            load = TelegramLoad(telegram, [app.url + WEBHOOK_PATH], stack.webhook_secret, http)
            say("warm-up: one pass of every conversation, both ways")
            warm = await load.run(conversations, len(conversations), per_slot=1)
            await load.drain(warm, 30)
            await rasa_rest_load(http, rasa.url, conversations, len(conversations), per_slot=1)
            windows = []
            for c in CONCURRENCY:
                windows.append(
                    await measure_window(
                        stack, load, http, rasa.url, database_url, conversations, c, seconds[c]
                    )
                )
            report["latency"] = [w.result() for w in windows]
            report["rasa_costs"] = await rasa_costs(
                http, stack, rasa.url, conversations, saturation_s, postgres
            )
            report["peak_rss_mb"] = stack.peak_rss_mb()
            stack.stop_all()
            report["startup"] = await startup(http, telegram, database_url, workdir)
    finally:
        stack.stop_all()
        await telegram.stop()
        if postgres:
            await drop_postgres_database(POSTGRES_ADMIN_URL, database_url)
    # Last, so that an evaluation finishing meanwhile is included (or run now if missing).
    report["accuracy"] = accuracy(args.with_eval, run_missing=not args.no_eval)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report["peak_rss_mb"]["bench (load generator + fake Telegram)"] = round(own, 1)
    report["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return report


def headline(report: dict[str, Any]) -> dict[str, Any]:
    """The flat keys tools read."""
    latency = {w["concurrency"]: w for w in report["latency"]}
    top = latency[max(latency)]
    tally = top["tally"]
    nlu, langid = report["accuracy"]["nlu"], report["accuracy"]["langid"]
    return {
        "e2e_p95_ratio": {str(c): w["p95_ratio"] for c, w in latency.items()},
        "throughput_msgs_per_s": top["app_msgs_per_s"],
        "rasa_alone_msgs_per_s": top["rasa_alone_msgs_per_s"],
        "throughput_ratio": ratio(top["app_msgs_per_s"], top["rasa_alone_msgs_per_s"]),
        "lost": sum(w["tally"].get("lost", 0) for w in report["latency"]),
        "duplicated": sum(w["tally"].get("duplicated", 0) for w in report["latency"]),
        "out_of_order": sum(w["tally"].get("out_of_order", 0) for w in report["latency"]),
        "throughput_lost": tally.get("lost"),
        "throughput_duplicated": tally.get("duplicated"),
        "nlu_macro_f1": nlu.get("nlu_macro_f1"),
        "emergency_recall": nlu.get("emergency_recall"),
        "langid_accuracy": langid.get("langid_accuracy"),
        "langdetect_raw_accuracy": langid.get("langdetect_raw_accuracy"),
        "peak_rss_mb": report["peak_rss_mb"],
        "startup_first_answer_s": report["startup"].get("answer_s"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short windows (about 4 minutes)")
    parser.add_argument("--with-eval", action="store_true", help="rerun the accuracy evaluations")
    parser.add_argument(
        "--database",
        choices=("postgresql", "sqlite"),
        default="postgresql" if reachable("127.0.0.1", 5432) else "sqlite",
        help="the app's database (default: PostgreSQL if reachable, as in production)",
    )
    parser.add_argument(
        "--no-eval", action="store_true", help="never run the evaluations; report what exists"
    )
    parser.add_argument("--out", type=Path, default=REPORTS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    report = asyncio.run(run(args))
    report = {**headline(report), **report}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    from scripts.bench_report import write_report

    write_report(report, args.out)
    say(f"wrote {args.out / 'bench.md'} and {args.out / 'bench.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
