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

from bot import metrics, webchat
from bot.alerts import AlertService
from bot.console import setup_console
from bot.keys import (
    ALERTS,
    ENGINE,
    HTTP,
    METRICS,
    OUTBOX,
    RELAY,
    SESSIONMAKER,
    SETTINGS,
    TELEGRAM,
)
from bot.outbox import Outbox, Sender
from bot.rasa_client import RasaClient
from bot.ratelimit import RateLimiter
from bot.relay import Relay
from bot.sanitize import reject_bad_characters
from bot.telegram import TelegramAdapter, TelegramSender
from pmi.db import create_engine, create_sessionmaker
from pmi.knowledge import Replies
from pmi.labels import CaseLabels
from pmi.logs import install_masking
from pmi.missions import Missions
from pmi.retention import run_retention_loop
from pmi.settings import Settings, load_settings

logger = logging.getLogger(__name__)

MAX_BODY = 64 * 1024


async def _resources(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    engine = create_engine(settings.database.url)
    app[ENGINE] = engine
    app[SESSIONMAKER] = create_sessionmaker(engine)
    app[HTTP] = aiohttp.ClientSession()
    rasa = RasaClient(
        app[HTTP], settings.rasa.url, settings.rasa.timeout_seconds, settings.rasa.token
    )
    app[RELAY] = Relay(
        settings,
        app[SESSIONMAKER],
        rasa,
        Replies.load(settings.content.replies_file),
        app[METRICS],
        limiter=RateLimiter(
            settings.rate_limit,
            app[SESSIONMAKER],
            Replies.load(settings.content.replies_file),
            settings.language.default,
        ),
    )
    content = settings.content
    telegram = settings.channels.telegram
    bot = None
    senders: dict[str, Sender] = {}
    if telegram.token:
        bot = Bot(telegram.token, base_url=telegram.base_url)
        await bot.initialize()
        senders["telegram"] = TelegramSender(bot)
    app[OUTBOX] = Outbox(app[SESSIONMAKER], senders, app[METRICS])
    if bot is not None:
        app[TELEGRAM] = TelegramAdapter(bot, app[RELAY], app[OUTBOX], telegram.webhook_secret)
        if _telegram_webhook(settings):
            await bot.set_webhook(
                f"{settings.app.public_url}/telegram/webhook",
                secret_token=telegram.webhook_secret,
                allowed_updates=["message", "callback_query"],
            )
        else:
            await app[TELEGRAM].start_polling()
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
        asyncio.create_task(app[OUTBOX].run(), name="outbox"),
        asyncio.create_task(
            run_retention_loop(app[SESSIONMAKER], settings.retention, rasa.forget),
            name="retention",
        ),
    ]
    yield
    if TELEGRAM in app:
        await app[TELEGRAM].stop()
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


async def metrics_view(request: web.Request) -> web.Response:
    """Prometheus metrics (loopback, or a bearer token when METRICS_TOKEN is set)."""
    if not metrics.allowed(request, request.app[SETTINGS].app.metrics_token):
        raise web.HTTPForbidden(text="metrics are not public")
    async with request.app[SESSIONMAKER]() as s:
        await request.app[METRICS].refresh(s)
    return metrics.render(request.app[METRICS])


async def ready(request: web.Request) -> web.Response:
    """Readiness: the database answers."""
    async with request.app[ENGINE].connect() as conn:
        await conn.execute(text("SELECT 1"))
    return web.json_response({"status": "ready"})


def _telegram_webhook(settings: Settings) -> bool:
    telegram = settings.channels.telegram
    return bool(telegram.token and telegram.webhook_secret and settings.app.public_url)


async def _telegram_webhook_view(request: web.Request) -> web.Response:
    return await request.app[TELEGRAM].webhook(request)


def create_app(settings: Settings) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY, middlewares=[reject_bad_characters])
    app[SETTINGS] = settings
    app[METRICS] = metrics.Metrics()
    app.cleanup_ctx.append(_resources)
    app.router.add_get("/metrics", metrics_view)
    app.router.add_get("/healthz", health)
    app.router.add_get("/readyz", ready)
    if settings.channels.webchat.enabled:
        webchat.setup_routes(app)
    setup_console(app, settings)
    if _telegram_webhook(settings):
        app.router.add_post("/telegram/webhook", _telegram_webhook_view)
    return app


def main() -> None:
    install_masking()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = load_settings()
    web.run_app(
        create_app(settings),
        host=settings.app.host,
        port=settings.app.port,
        print=lambda *_: None,
        access_log=None,
    )
