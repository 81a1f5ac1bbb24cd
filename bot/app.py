"""The app server: `create_app(settings)` and the `python -m bot` entry point."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
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
from bot.inbox import Inbox
from bot.keys import (
    ALERTS,
    ENGINE,
    ERASURE,
    HTTP,
    INBOX,
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


@dataclass
class _Channels:
    """The providers' clients this process opened, and what they send and fetch with."""

    bot: Bot | None = None
    wa_http: httpx.AsyncClient | None = None
    senders: dict[str, Sender] = field(default_factory=dict)
    media_sources: dict[str, MediaSource] = field(default_factory=dict)

    async def close(self) -> None:
        if self.bot is not None:
            await self.bot.shutdown()
        if self.wa_http is not None:
            await self.wa_http.aclose()


async def _open_channels(settings: Settings, replies: Replies) -> _Channels:
    channels = _Channels()
    telegram, whatsapp = settings.channels.telegram, settings.channels.whatsapp
    if telegram.token:
        bot = channels.bot = Bot(
            telegram.token,
            base_url=telegram.base_url,
            base_file_url=file_url(telegram.base_url),
            request=AiohttpRequest(),
            get_updates_request=AiohttpRequest(connection_pool_size=1),
        )
        await bot.initialize()
        channels.senders["telegram"] = TelegramSender(bot)
        channels.media_sources["telegram"] = TelegramMedia(bot)
        if settings.alerts.staff_telegram_chat_id:
            channels.senders[STAFF_CHANNEL] = TelegramSender(bot, min_interval=GROUP_INTERVAL)
    if whatsapp.enabled:
        channels.wa_http = httpx.AsyncClient(timeout=httpx.Timeout(20.0, connect=5.0))
        wa_client = create_client(whatsapp, channels.wa_http)
        channels.senders["whatsapp"] = WhatsAppSender(wa_client, whatsapp, replies)
        channels.media_sources["whatsapp"] = WhatsAppMedia(wa_client)
    return channels


def _relay(app: web.Application, rasa: RasaClient, replies: Replies) -> Relay:
    settings, sessions = app[SETTINGS], app[SESSIONMAKER]
    return Relay(
        settings,
        sessions,
        rasa,
        replies,
        app[METRICS],
        limiter=RateLimiter(settings.rate_limit, sessions, replies, settings.language.default),
        outbox=app[OUTBOX],
        case_limits=app[webchat.GUARD].urgent if webchat.GUARD in app else None,
        on_erasure=partial(_after_erasure, app),
    )


async def _start_adapters(app: web.Application, channels: _Channels, replies: Replies) -> None:
    settings = app[SETTINGS]
    telegram, whatsapp = settings.channels.telegram, settings.channels.whatsapp
    if whatsapp.enabled:
        app[WHATSAPP] = WhatsAppAdapter(whatsapp, app[INBOX], app[SESSIONMAKER])
    if channels.bot is None:
        return
    notice = replies.get("group_not_supported", settings.language.default)
    app[TELEGRAM] = TelegramAdapter(
        channels.bot, app[INBOX], telegram.webhook_secret, group_notice=notice
    )
    if _telegram_webhook(settings):
        await channels.bot.set_webhook(
            f"{settings.app.public_url}/telegram/webhook",
            secret_token=telegram.webhook_secret,
            allowed_updates=ALLOWED_UPDATES,
        )
    else:
        await app[TELEGRAM].start_polling()


def _start_loops(app: web.Application, rasa: RasaClient) -> list[asyncio.Task[None]]:
    """The app's background loops: retries, alerts, delivery, files, retention, erasure."""
    loops = {
        "retry-pending": app[RELAY].run_retry_loop(),
        "staff-alerts": app[ALERTS].run(),
        "outbox": app[OUTBOX].run(),
        "media-fetcher": app[MEDIA_FETCHER].run(),
        "retention": run_retention_loop(app[SESSIONMAKER], app[SETTINGS].retention, rasa.prune),
        "erasure": app[ERASURE].run(),
    }
    return [asyncio.create_task(work, name=name) for name, work in loops.items()]


async def _resources(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    content = settings.content
    engine = create_engine(settings.database.url)
    app[ENGINE] = engine
    app[SESSIONMAKER] = create_sessionmaker(engine)
    app[HTTP] = aiohttp.ClientSession()
    await asyncio.to_thread(language.warm_up)  # never on a worker's first message
    rasa = RasaClient(
        app[HTTP], settings.rasa.url, settings.rasa.timeout_seconds, settings.rasa.token
    )
    replies = Replies.load(content.replies_file)
    channels = await _open_channels(settings, replies)
    app[OUTBOX] = Outbox(app[SESSIONMAKER], channels.senders, app[METRICS])
    app[RELAY] = _relay(app, rasa, replies)
    app[ERASURE] = ErasureWorker(app[SESSIONMAKER], rasa)
    app[MEDIA_STORE] = MediaStore(settings.media.dir)
    app[MEDIA_FETCHER] = MediaFetcher(
        app[SESSIONMAKER], app[MEDIA_STORE], channels.media_sources, settings.media.max_bytes
    )
    app[INBOX] = Inbox(app[SESSIONMAKER], app[RELAY], app[METRICS], app[MEDIA_FETCHER].notify)
    await _start_adapters(app, channels, replies)
    app[ALERTS] = AlertService(
        settings,
        app[SESSIONMAKER],
        Missions.load(content.missions_file),
        CaseLabels.load(content.case_labels_file),
        replies,
        app[OUTBOX],
    )
    loops = _start_loops(app, rasa)
    yield
    await _shutdown(app, loops, channels)


async def _shutdown(
    app: web.Application, loops: list[asyncio.Task[None]], channels: _Channels
) -> None:
    if TELEGRAM in app:
        await app[TELEGRAM].stop()
    await app[INBOX].stop()
    for task in loops:
        task.cancel()
    # Bounded: a task cancelled inside a database call must not hold shutdown forever
    # (whatever it was doing is still pending in the database and is redone on start).
    _, stuck = await asyncio.wait(loops, timeout=SHUTDOWN_SECONDS)
    if stuck:
        logger.warning("shutdown: %s did not stop in time", ", ".join(t.get_name() for t in stuck))
    await channels.close()
    await app[HTTP].close()
    try:
        await asyncio.wait_for(app[ENGINE].dispose(), SHUTDOWN_SECONDS)
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
