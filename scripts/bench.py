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
import json
import logging
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from devtools.databases import create_postgres_database, drop_postgres_database, migrate
from devtools.fake_telegram import FakeTelegram
from devtools.load import TelegramLoad, load_conversations
from devtools.model import ROOT, ensure_model
from devtools.net import reachable
from devtools.rest_load import rasa_rest_load
from devtools.stack import DEV_CREDENTIALS, WEBHOOK_PATH, Stack
from devtools.stats import ratio
from scripts.bench_common import CONVERSATIONS, POSTGRES_ADMIN_URL, REPORTS, git_commit, say
from scripts.bench_costs import rasa_costs
from scripts.bench_latency import measure_window
from scripts.bench_startup import startup

logger = logging.getLogger(__name__)

CONCURRENCY = (1, 10, 100)


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


# --- the run --------------------------------------------------------------------------


def machine(quick: bool) -> dict[str, Any]:
    """The start of the report: the machine, the commit, the load on it."""
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
    return report


async def measure(
    report: dict[str, Any],
    args: argparse.Namespace,
    stack: Stack,
    telegram: FakeTelegram,
    database_url: str,
) -> None:
    """Every measured phase on the stack's services (not started yet), into `report`."""
    seconds = {1: 15, 10: 15, 100: 20} if args.quick else {1: 60, 10: 60, 100: 60}
    saturation_s = 8 if args.quick else 20
    conversations = load_conversations(CONVERSATIONS)
    rasa, app = stack.services["rasa"], stack.services["app"]
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
            http, stack, rasa.url, conversations, saturation_s, args.database == "postgresql"
        )
        report["peak_rss_mb"] = stack.peak_rss_mb()
        stack.stop_all()
        report["startup"] = await startup(http, telegram, database_url, stack.workdir)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    report = machine(args.quick)
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
    stack.app(rasa_url=rasa.url, telegram=telegram)
    try:
        await measure(report, args, stack, telegram, database_url)
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
