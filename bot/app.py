"""The app server: `create_app(settings)` and the `python -m bot` entry point."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from sqlalchemy import text
from telegram import Bot

from bot import webchat
from bot.alerts import AlertService
from bot.console import setup_console
from bot.keys import ALERTS, ENGINE, HTTP, RELAY, SESSIONMAKER, SETTINGS
from bot.rasa_client import RasaClient
from bot.relay import Relay
from pmi.db import create_engine, create_sessionmaker
from pmi.knowledge import Replies
from pmi.labels import CaseLabels
from pmi.missions import Missions
from pmi.settings import Settings, load_settings

logger = logging.getLogger(__name__)

MAX_BODY = 64 * 1024


async def _resources(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    engine = create_engine(settings.database.url)
    app[ENGINE] = engine
    app[SESSIONMAKER] = create_sessionmaker(engine)
    app[HTTP] = aiohttp.ClientSession()
    rasa = RasaClient(app[HTTP], settings.rasa.url, settings.rasa.timeout_seconds)
    app[RELAY] = Relay(
        settings, app[SESSIONMAKER], rasa, Replies.load(settings.content.replies_file)
    )
    content = settings.content
    bot = None
    if settings.channels.telegram.token:
        bot = Bot(settings.channels.telegram.token, base_url=settings.channels.telegram.base_url)
        await bot.initialize()
    app[ALERTS] = AlertService(
        settings,
        app[SESSIONMAKER],
        Missions.load(content.missions_file),
        CaseLabels.load(content.case_labels_file),
        Replies.load(content.replies_file),
        bot,
    )
    tasks = [
        asyncio.create_task(app[RELAY].run_retry_loop(), name="retry-pending"),
        asyncio.create_task(app[ALERTS].run(), name="staff-alerts"),
    ]
    yield
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if bot is not None:
        await bot.shutdown()
    await app[HTTP].close()
    await engine.dispose()


async def health(_: web.Request) -> web.Response:
    """Liveness: the process answers."""
    return web.json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    """Readiness: the database answers."""
    async with request.app[ENGINE].connect() as conn:
        await conn.execute(text("SELECT 1"))
    return web.json_response({"status": "ready"})


def create_app(settings: Settings) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_resources)
    app.router.add_get("/healthz", health)
    app.router.add_get("/readyz", ready)
    if settings.channels.webchat.enabled:
        webchat.setup_routes(app)
    setup_console(app, settings)
    return app


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = load_settings()
    web.run_app(
        create_app(settings),
        host=settings.app.host,
        port=settings.app.port,
        print=lambda *_: None,
        access_log=None,
    )
