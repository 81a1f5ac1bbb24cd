"""Shared fixtures: databases (SQLite and PostgreSQL), and the real Rasa and action servers.

The Rasa and action servers are started once per test session, on free ports of
127.0.0.1, with the model that `make test` trained (or reused from the cache).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import weakref
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from devtools.gate import Gate
from devtools.model import ensure_model, rasa_env
from pmi.db import create_engine
from pmi.settings import Settings, load_settings

# The scaled-out stack (two Rasa servers, two apps) of the scale and fault suites.
pytest_plugins = ("tests.scaled",)
ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("PTB_TIMEDELTA", "1")  # as `make` sets it
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _postgres_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


def _backends() -> list:
    backends = [pytest.param("sqlite", id="sqlite")]
    mark = () if _postgres_reachable() else pytest.mark.skip("PostgreSQL not reachable")
    backends.append(pytest.param("postgresql", id="postgresql", marks=mark))
    return backends


def alembic_config() -> Config:
    return Config(str(ROOT / "alembic.ini"))


async def migrate(engine: AsyncEngine) -> None:
    def _upgrade(connection) -> None:  # type: ignore[no-untyped-def]
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")

    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)


@dataclass
class Database:
    url: str
    engine: AsyncEngine
    connect_args: dict


@pytest.fixture(scope="session", params=_backends())
async def database(request, tmp_path_factory) -> AsyncIterator[Database]:
    """A migrated database of each backend, private to this test session."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
        connect_args: dict = {}
        admin = None
    else:
        url = POSTGRES_URL
        schema = f"pmi_test_{secrets.token_hex(4)}"
        connect_args = {"server_settings": {"search_path": schema}}
        admin = create_engine(url)
        async with admin.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = create_engine(url, connect_args=connect_args)
    await migrate(engine)
    yield Database(url, engine, connect_args)
    await engine.dispose()
    if admin is not None:
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


@pytest.fixture
async def app_db(tmp_path) -> str:
    """A fresh, migrated SQLite database file for one test's app."""
    url = f"sqlite:///{tmp_path / 'app.db'}"
    engine = create_engine(url)
    await migrate(engine)
    await engine.dispose()
    return url


@pytest.fixture
async def telegram() -> AsyncIterator:
    """A local fake of the Telegram Bot API."""
    from devtools.fake_telegram import FakeTelegram

    fake = FakeTelegram()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def sessions(database: Database) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions bound to one outer transaction that is rolled back after the test."""
    async with database.engine.connect() as conn:
        outer = await conn.begin()
        yield async_sessionmaker(
            bind=conn, expire_on_commit=False, join_transaction_mode="create_savepoint"
        )
        await outer.rollback()


# --- real servers -------------------------------------------------------------------


def _wait_http(url: str, proc: subprocess.Popen, name: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{name} not ready after {timeout}s at {url}")


@dataclass
class Servers:
    rasa_url: str
    rasa_token: str
    action_url: str
    database_url: str
    action_gate: Gate  # between Rasa and the action server; close it to cut them apart
    tracker_db: Path  # Rasa's SQL tracker store (SQLite)
    logs: Path  # Rasa's and the action server's logs


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
async def stack_db(tmp_path_factory) -> str:
    """The SQLite database shared by the action server and the app in end-to-end tests."""
    url = f"sqlite:///{tmp_path_factory.mktemp('stack') / 'stack.db'}"
    engine = create_engine(url)
    await migrate(engine)
    await engine.dispose()
    return url


@pytest.fixture(scope="session")
def servers(tmp_path_factory, stack_db: str) -> Iterator[Servers]:
    """The real action server and Rasa server with the trained model (once per session)."""
    model = ensure_model()
    logs = tmp_path_factory.mktemp("logs")
    action_port, rasa_port = free_port(), free_port()
    action_gate = Gate(action_port)
    token = secrets.token_hex(24)
    # The apps the tests build read the relay channel's token from the environment, as the
    # app does in production.
    os.environ["RASA_TOKEN"] = token
    tracker_db = tmp_path_factory.mktemp("rasa") / "tracker.db"
    env = rasa_env()
    env.update(
        SANIC_HOST="127.0.0.1",
        ACTION_SERVER_URL=f"{action_gate.url}/webhook",
        ACTION_SERVER_TOKEN=secrets.token_hex(24),
        RASA_TOKEN=token,
        RASA_TRACKER_DB=str(tracker_db),  # a SQL tracker store on SQLite, as `make run`
        DATABASE_URL=stack_db,
    )
    action_log, rasa_log = (logs / "actions.log").open("w"), (logs / "rasa.log").open("w")
    actions = subprocess.Popen(
        [sys.executable, "-m", "rasa_sdk", "--actions", "actions", "-p", str(action_port)],
        cwd=ROOT,
        env=env,
        stdout=action_log,
        stderr=subprocess.STDOUT,
    )
    rasa = subprocess.Popen(
        [
            str(ROOT / ".venv-rasa/bin/rasa"), "run", "--enable-api", "--auth-token", token,
            "-i", "127.0.0.1", "-p", str(rasa_port), "-m", str(model),
            "--endpoints", "rasa_project/endpoints.yml",
            "--credentials", "rasa_project/credentials.yml",
        ],
        cwd=ROOT,
        env=env,
        stdout=rasa_log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        _wait_http(f"http://127.0.0.1:{action_port}/health", actions, "action server", 60)
        _wait_http(f"http://127.0.0.1:{rasa_port}/status?token={token}", rasa, "rasa", 300)
        yield Servers(
            f"http://127.0.0.1:{rasa_port}",
            token,
            env["ACTION_SERVER_URL"],
            stack_db,
            action_gate,
            tracker_db,
            logs,
        )
    except RuntimeError:
        for name in ("rasa.log", "actions.log"):
            sys.stderr.write(f"--- {name}\n{(logs / name).read_text()[-4000:]}\n")
        raise
    finally:
        _stop(rasa)
        _stop(actions)
        action_gate.stop()
        action_log.close()
        rasa_log.close()


def make_settings(
    database_url: str, rasa_url: str = "http://127.0.0.1:9", *, webchat: bool = True
) -> Settings:
    """The settings of a test app; the web chat (off by default) is on unless `webchat=False`."""
    settings = load_settings()
    channels = settings.channels
    web = channels.webchat.model_copy(update={"enabled": webchat})
    return settings.model_copy(
        update={
            "database": settings.database.model_copy(update={"url": database_url}),
            "rasa": settings.rasa.model_copy(update={"url": rasa_url, "retry_seconds": 0.2}),
            "channels": channels.model_copy(update={"webchat": web}),
        }
    )


async def wait_until(predicate, timeout: float = 20.0, interval: float = 0.1) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(interval)
    raise AssertionError("condition not met in time")


# Per test client: sender name -> its web chat cookie (one conversation per sender).
_CHAT_COOKIES: weakref.WeakKeyDictionary[Any, dict[str, str]] = weakref.WeakKeyDictionary()


def chat_cookies(client, sender: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The web chat cookie of the conversation `sender` on this test client.

    Signed with the app's own key for the sender named, so the contact's `channel_user_id`
    is that name and tests can look it up; real clients get a random sender from the server.
    Passed with each request (`cookies=`), so the client's own jar never mixes senders.
    """
    from bot.keys import SETTINGS
    from bot.webchat import GUARD, cookie_name

    minted = _CHAT_COOKIES.setdefault(client, {})
    if sender not in minted:
        minted[sender] = client.app[GUARD].cookies.sign(sender)
    secure = (client.app[SETTINGS].app.public_url or "").startswith("https://")
    return {cookie_name(secure): minted[sender]}


async def post_chat(client, sender: str, body: dict[str, Any]):  # type: ignore[no-untyped-def]
    """POST a web chat message (`{"text": ..., "id": ...}`) as `sender`; the response."""
    return await client.post("/api/chat", json=body, cookies=chat_cookies(client, sender))


async def say(client, sender: str, text: str) -> list[dict]:  # type: ignore[no-untyped-def]
    """Send one web chat message as `sender` and return the replies."""
    resp = await post_chat(client, sender, {"text": text})
    assert resp.status == 200, await resp.text()
    return (await resp.json())["messages"]


async def updates(client, sender: str) -> list[dict]:  # type: ignore[no-untyped-def]
    """The replies queued for `sender` since its last request (`POST /api/chat/updates`)."""
    resp = await client.post("/api/chat/updates", json={}, cookies=chat_cookies(client, sender))
    assert resp.status == 200, await resp.text()
    return (await resp.json())["messages"]


def joined(replies: list[dict]) -> str:
    return "\n".join(r["text"] for r in replies)


@pytest.fixture
async def chat(servers: Servers) -> AsyncIterator:
    """The real app on 127.0.0.1, talking to the session's Rasa and action servers."""
    from aiohttp.test_utils import TestClient, TestServer

    from bot.app import create_app

    app = create_app(make_settings(servers.database_url, servers.rasa_url, webchat=True))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


# --- a real browser ---------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Chromium as root in a closed network: no sandbox, no background traffic.
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator:
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (.ci/run installs Debian's chromium)")
        pytest.skip("chromium not installed: apt-get install chromium")
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        await browser.close()
