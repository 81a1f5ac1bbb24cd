"""`make bench`, start-up: `make run` with nothing to rebuild, a message sent before Rasa is
ready."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp

from devtools.load import TelegramLoad
from devtools.model import ROOT
from devtools.net import free_port
from devtools.probes import reply_kinds, stored
from devtools.reconcile import reconcile
from devtools.stack import WEBHOOK_PATH
from scripts.bench_common import say


def make_run_env(telegram: Any, database_url: str) -> tuple[dict[str, str], dict[str, int], str]:
    """The environment of `make run` on free ports with the fake Bot API: (env, ports, secret)."""
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
    return env, ports, secret


async def first_answer(
    http: aiohttp.ClientSession,
    load: TelegramLoad,
    proc: subprocess.Popen[bytes],
    started: float,
    database_url: str,
    urls: tuple[str, str],
) -> dict[str, Any]:
    """A message posted as soon as the app (`urls[0]`) answers, timed until it is answered;
    `urls[1]` answers 200 once Rasa has loaded its model."""
    app, rasa_status = urls
    chat = load.new_chat()
    result: dict[str, Any] = {}
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
    return result


def stop_make(proc: subprocess.Popen[bytes]) -> None:
    """Stop `make run` as Ctrl-C would (its process group), then SIGKILL after 30 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


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
    env, ports, secret = make_run_env(telegram, database_url)
    app = f"http://127.0.0.1:{ports['APP_PORT']}"
    rasa_status = f"http://127.0.0.1:{ports['RASA_PORT']}/webhooks/relay/"  # model loaded
    load = TelegramLoad(telegram, [app + WEBHOOK_PATH], secret, http, reply_timeout=300)
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
    try:
        result = await first_answer(http, load, proc, started, database_url, (app, rasa_status))
    finally:
        stop_make(proc)
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
