"""Shared fixtures: databases (SQLite and PostgreSQL), and the real Rasa and action servers.

The Rasa and action servers are started once per test session, on free ports of
127.0.0.1, with the model that `make test` trained (or reused from the cache). The helpers
the tests share are in tests/support.py, the fakes and the launcher in devtools/.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from devtools.gate import Gate
from devtools.model import ensure_model, rasa_env
from devtools.net import free_port
from devtools.service import Service
from pmi.db import create_engine
from tests.support import (
    POSTGRES_URL,
    ROOT,
    Database,
    Servers,
    make_settings,
    migrate,
    migrated,
    postgres_reachable,
)

# The scaled-out stack (two Rasa servers, two apps) of the scale and fault suites.
pytest_plugins = ("tests.scaled",)
os.environ.setdefault("PTB_TIMEDELTA", "1")  # as `make` sets it


def _backends() -> list:
    backends = [pytest.param("sqlite", id="sqlite")]
    mark = () if postgres_reachable() else pytest.mark.skip("PostgreSQL not reachable")
    backends.append(pytest.param("postgresql", id="postgresql", marks=mark))
    return backends


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
    return await migrated(f"sqlite:///{tmp_path / 'app.db'}")


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


@pytest.fixture(scope="session")
async def stack_db(tmp_path_factory) -> str:
    """The SQLite database shared by the action server and the app in end-to-end tests."""
    return await migrated(f"sqlite:///{tmp_path_factory.mktemp('stack') / 'stack.db'}")


def _rasa_and_actions(
    model: Path, logs: Path, env: dict[str, str], token: str, ports: tuple[int, int]
) -> tuple[Service, Service]:
    """The Rasa server (HTTP API on, behind `token`) and the action server, not started."""
    rasa_port, action_port = ports
    actions = Service(
        "action server",
        [sys.executable, "-m", "actions.server", "-p", str(action_port)],
        env,
        action_port,
        f"http://127.0.0.1:{action_port}/health",
        logs / "actions.log",
    )
    rasa = Service(
        "rasa",
        [
            str(ROOT / ".venv-rasa/bin/rasa"), "run", "--enable-api", "--auth-token", token,
            "-i", "127.0.0.1", "-p", str(rasa_port), "-m", str(model),
            "--endpoints", "rasa_project/endpoints.yml",
            "--credentials", "rasa_project/credentials.yml",
        ],
        env,
        rasa_port,
        f"http://127.0.0.1:{rasa_port}/status?token={token}",
        logs / "rasa.log",
    )  # fmt: skip
    return rasa, actions


@pytest.fixture(scope="session")
def servers(tmp_path_factory, stack_db: str) -> Iterator[Servers]:
    """The real action server and Rasa server with the trained model (once per session)."""
    model = ensure_model()
    logs = tmp_path_factory.mktemp("logs")
    token = secrets.token_hex(24)
    # The apps the tests build read the relay channel's token from the environment, as the
    # app does in production.
    os.environ["RASA_TOKEN"] = token
    tracker_db = tmp_path_factory.mktemp("rasa") / "tracker.db"
    action_port, rasa_port = free_port(), free_port()
    action_gate = Gate(action_port)
    env = rasa_env()
    env.update(
        SANIC_HOST="127.0.0.1",
        ACTION_SERVER_URL=f"{action_gate.url}/webhook",
        ACTION_SERVER_TOKEN=secrets.token_hex(24),
        RASA_TOKEN=token,
        RASA_TRACKER_DB=str(tracker_db),  # a SQL tracker store on SQLite, as `make run`
        DATABASE_URL=stack_db,
    )
    rasa, actions = _rasa_and_actions(model, logs, env, token, (rasa_port, action_port))
    actions.start()
    rasa.start()
    try:
        actions.wait_ready(60)
        rasa.wait_ready(300)
        yield Servers(
            rasa.url,
            token,
            env["ACTION_SERVER_URL"],
            stack_db,
            action_gate,
            tracker_db,
            logs,
            env,
        )
    except RuntimeError:
        for name in ("rasa.log", "actions.log"):
            sys.stderr.write(f"--- {name}\n{(logs / name).read_text()[-4000:]}\n")
        raise
    finally:
        rasa.stop()
        actions.stop()
        action_gate.stop()


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
