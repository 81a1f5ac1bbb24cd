"""Helpers the tests share (fixtures stay in conftest.py): databases, test settings, waiting,
and the web chat as a test client speaks it."""

from __future__ import annotations

import asyncio
import os
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncEngine

from devtools.gate import Gate
from devtools.net import reachable
from pmi.db import create_engine
from pmi.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def postgres_reachable() -> bool:
    return reachable("127.0.0.1", 5432)


def alembic_config() -> Config:
    return Config(str(ROOT / "alembic.ini"))


async def migrate(engine: AsyncEngine) -> None:
    def _upgrade(connection) -> None:  # type: ignore[no-untyped-def]
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")

    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)


async def migrated(url: str) -> str:
    """Bring the database at `url` to the Alembic head; its URL."""
    engine = create_engine(url)
    await migrate(engine)
    await engine.dispose()
    return url


@dataclass
class Database:
    url: str
    engine: AsyncEngine
    connect_args: dict


@dataclass
class Servers:
    rasa_url: str
    rasa_token: str
    action_url: str
    database_url: str
    action_gate: Gate  # between Rasa and the action server; close it to cut them apart
    tracker_db: Path  # Rasa's SQL tracker store (SQLite)
    logs: Path  # Rasa's and the action server's logs
    env: dict[str, str] = field(default_factory=dict)  # what the action server runs with


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
            "rasa": settings.rasa.model_copy(
                update={
                    "url": rasa_url,
                    "retry_seconds": 0.2,
                    "failed_turn_backoff_seconds": (0.1, 0.1),  # 3 tries, then a person
                }
            ),
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
