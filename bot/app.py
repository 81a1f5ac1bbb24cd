"""The app server: `create_app(settings)` and the `python -m bot` entry point."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from functools import partial

import aiohttp
import httpx
from aiohttp import web
from telegram import Bot

from bot import language, metrics, webchat
from bot.alerts import AlertService
from bot.console import setup_console
from bot.delivery import Sender
from bot.erasure import ErasureWorker
from bot.keys import (
    ALERTS,
    ENGINE,
    ERASURE,
    HTTP,
    MEDIA_FETCHER,
    MEDIA_STORE,
    METRICS,
    OUTBOX,
    RELAY,
    SESSIONMAKER,
    SETTINGS,
    TELEGRAM,
    WHATSAPP,
)
from bot.media import MediaFetcher, MediaSource
from bot.outbox import Outbox
from bot.rasa_client import RasaClient
from bot.relay import Relay
from bot.sanitize import reject_bad_characters
from bot.telegram import (
    ALLOWED_UPDATES,
    GROUP_INTERVAL,
    TelegramAdapter,
    TelegramMedia,
    TelegramSender,
    file_url,
)
from bot.telegram_http import AiohttpRequest
from bot.whatsapp import WhatsAppAdapter, WhatsAppMedia, WhatsAppSender, create_client
from pmi.alerts import STAFF_CHANNEL
from pmi.db import checkpoint, create_engine, create_sessionmaker, ping
from pmi.jsonlog import configure_logging
from pmi.knowledge import Replies
from pmi.labels import CaseLabels
from pmi.logs import install_masking
from pmi.media import MediaStore
from pmi.missions import Missions
from pmi.ratelimit import RateLimiter
from pmi.retention import run_retention_loop
from pmi.settings import Settings, load_settings

logger = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
SHUTDOWN_SECONDS = 10


async def _resources(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    engine = create_engine(settings.database.url)
    app[ENGINE] = engine
    app[SESSIONMAKER] = create_sessionmaker(engine)
    app[HTTP] = aiohttp.ClientSession()
    await asyncio.to_thread(language.warm_up)  # never on a worker's first message
    rasa = RasaClient(
        app[HTTP], settings.rasa.url, settings.rasa.timeout_seconds, settings.rasa.token
    )
    replies = Replies.load(settings.content.replies_file)
    content = settings.content
    telegram, whatsapp = settings.channels.telegram, settings.channels.whatsapp
    bot = None
    wa_http: httpx.AsyncClient | None = None
    senders: dict[str, Sender] = {}
    media_sources: dict[str, MediaSource] = {}
    if telegram.token:
        bot = Bot(
            telegram.token,
            base_url=telegram.base_url,
            base_file_url=file_url(telegram.base_url),
            request=AiohttpRequest(),
            get_updates_request=AiohttpRequest(connection_pool_size=1),
        )
        await bot.initialize()
        senders["telegram"] = TelegramSender(bot)
        media_sources["telegram"] = TelegramMedia(bot)
        if settings.alerts.staff_telegram_chat_id:
            senders[STAFF_CHANNEL] = TelegramSender(bot, min_interval=GROUP_INTERVAL)
    if whatsapp.enabled:
        wa_http = httpx.AsyncClient(timeout=httpx.Timeout(20.0, connect=5.0))
        wa_client = create_client(whatsapp, wa_http)
        senders["whatsapp"] = WhatsAppSender(wa_client, whatsapp, replies)
        media_sources["whatsapp"] = WhatsAppMedia(wa_client)
    app[OUTBOX] = Outbox(app[SESSIONMAKER], senders, app[METRICS])
    app[RELAY] = Relay(
        settings,
        app[SESSIONMAKER],
        rasa,
        replies,
        app[METRICS],
        limiter=RateLimiter(
            settings.rate_limit,
            app[SESSIONMAKER],
            replies,
            settings.language.default,
        ),
        outbox=app[OUTBOX],
        case_limits=app[webchat.GUARD].urgent if webchat.GUARD in app else None,
        on_erasure=partial(_after_erasure, app),
    )
    app[ERASURE] = ErasureWorker(app[SESSIONMAKER], rasa)
    app[MEDIA_STORE] = MediaStore(settings.media.dir)
    app[MEDIA_FETCHER] = MediaFetcher(
        app[SESSIONMAKER], app[MEDIA_STORE], media_sources, settings.media.max_bytes
    )
    on_media = app[MEDIA_FETCHER].notify
    if whatsapp.enabled:
        app[WHATSAPP] = WhatsAppAdapter(whatsapp, app[RELAY], app[SESSIONMAKER], on_media)
    if bot is not None:
        app[TELEGRAM] = TelegramAdapter(
            bot,
            app[RELAY],
            telegram.webhook_secret,
            on_media,
            group_notice=replies.get("group_not_supported", settings.language.default),
        )
        if _telegram_webhook(settings):
            await bot.set_webhook(
                f"{settings.app.public_url}/telegram/webhook",
                secret_token=telegram.webhook_secret,
                allowed_updates=ALLOWED_UPDATES,
            )
        else:
            await app[TELEGRAM].start_polling()
    app[ALERTS] = AlertService(
        settings,
        app[SESSIONMAKER],
        Missions.load(content.missions_file),
        CaseLabels.load(content.case_labels_file),
        replies,
        app[OUTBOX],
    )
    tasks = [
        asyncio.create_task(app[RELAY].run_retry_loop(), name="retry-pending"),
        asyncio.create_task(app[ALERTS].run(), name="staff-alerts"),
        asyncio.create_task(app[OUTBOX].run(), name="outbox"),
        asyncio.create_task(app[MEDIA_FETCHER].run(), name="media-fetcher"),
        asyncio.create_task(
            run_retention_loop(app[SESSIONMAKER], settings.retention, rasa.prune),
            name="retention",
        ),
        asyncio.create_task(app[ERASURE].run(), name="erasure"),
    ]
    yield
    if TELEGRAM in app:
        await app[TELEGRAM].stop()
    if WHATSAPP in app:
        await app[WHATSAPP].stop()
    for task in tasks:
        task.cancel()
    # Bounded: a task cancelled inside a database call must not hold shutdown forever
    # (whatever it was doing is still pending in the database and is redone on start).
    _, stuck = await asyncio.wait(tasks, timeout=SHUTDOWN_SECONDS)
    if stuck:
        logger.warning("shutdown: %s did not stop in time", ", ".join(t.get_name() for t in stuck))
    if bot is not None:
        await bot.shutdown()
    if wa_http is not None:
        await wa_http.aclose()
    await app[HTTP].close()
    try:
        await asyncio.wait_for(engine.dispose(), SHUTDOWN_SECONDS)
    except TimeoutError:
        logger.warning("shutdown: database connections did not close in time")


async def _after_erasure(app: web.Application, files: list[str]) -> None:
    """After a worker's erasure is committed: her files, Rasa's copy, SQLite's log."""
    for key in files:
        app[MEDIA_STORE].delete(key)
    app[ERASURE].notify()
    await checkpoint(app[ENGINE])


async def health(_: web.Request) -> web.Response:
    """Liveness: the process answers."""
    return web.json_response({"status": "ok"})


async def metrics_view(request: web.Request) -> web.Response:
    """Prometheus metrics (the bearer token if METRICS_TOKEN is set, else loopback only)."""
    if not metrics.allowed(request, request.app[SETTINGS].app.metrics_token):
        raise web.HTTPForbidden(text="metrics are not public")
    async with request.app[SESSIONMAKER]() as s:
        await request.app[METRICS].refresh(s)
    return metrics.render(request.app[METRICS])


async def ready(request: web.Request) -> web.Response:
    """Readiness: the database answers."""
    await ping(request.app[ENGINE])
    return web.json_response({"status": "ready"})


def _telegram_webhook(settings: Settings) -> bool:
    telegram = settings.channels.telegram
    return bool(telegram.token and telegram.webhook_secret and settings.app.public_url)


async def _telegram_webhook_view(request: web.Request) -> web.Response:
    return await request.app[TELEGRAM].webhook(request)


async def _whatsapp_verify_view(request: web.Request) -> web.Response:
    return await request.app[WHATSAPP].verify(request)


async def _whatsapp_webhook_view(request: web.Request) -> web.Response:
    return await request.app[WHATSAPP].webhook(request)


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
    if settings.channels.whatsapp.enabled:
        app.router.add_get("/whatsapp/webhook", _whatsapp_verify_view)
        app.router.add_post("/whatsapp/webhook", _whatsapp_webhook_view)
    return app


def main() -> None:
    install_masking()
    configure_logging()  # LOG_FORMAT=json: one JSON object per line
    settings = load_settings()
    web.run_app(
        create_app(settings),
        host=settings.app.host,
        port=settings.app.port,
        print=lambda *_: None,
        access_log=None,
    )
