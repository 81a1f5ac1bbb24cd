"""Typed keys of the app's shared resources."""

from __future__ import annotations

import aiohttp
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.alerts import AlertService
from bot.erasure import ErasureWorker
from bot.inbox import Inbox
from bot.media import MediaFetcher
from bot.metrics import Metrics
from bot.outbox import Outbox
from bot.relay import Relay
from bot.telegram import TelegramAdapter
from bot.whatsapp import WhatsAppAdapter
from pmi.media import MediaStore
from pmi.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONMAKER = web.AppKey("sessionmaker", async_sessionmaker[AsyncSession])
HTTP = web.AppKey("http", aiohttp.ClientSession)
RELAY = web.AppKey("relay", Relay)
INBOX = web.AppKey("inbox", Inbox)
ALERTS = web.AppKey("alerts", AlertService)
OUTBOX = web.AppKey("outbox", Outbox)
TELEGRAM = web.AppKey("telegram", TelegramAdapter)
METRICS = web.AppKey("metrics", Metrics)
WHATSAPP = web.AppKey("whatsapp", WhatsAppAdapter)
MEDIA_FETCHER = web.AppKey("media_fetcher", MediaFetcher)
MEDIA_STORE = web.AppKey("media_store", MediaStore)
ERASURE = web.AppKey("erasure", ErasureWorker)
