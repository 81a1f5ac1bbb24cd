"""Telegram through the real python-telegram-bot library and a local fake Bot API."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from bot.app import create_app
from bot.delivery import split_text
from bot.keys import MEDIA_STORE, SESSIONMAKER
from bot.outbox import Outbox
from bot.telegram import MAX_MESSAGE, SECRET_HEADER, TelegramSender, keyboard
from devtools.fake_telegram import FakeTelegram, button_update, photo_update, text_update
from devtools.net import free_port
from pmi.db import create_engine, create_sessionmaker
from pmi.models import Contact, InboundMessage, Media, OutboundMessage
from tests.support import Servers, make_settings, wait_until

SECRET = "s3cret-webhook-token"


def test_long_replies_are_split_under_the_limit() -> None:
    text = "\n\n".join(f"Paragraf {i}: " + "kata " * 300 for i in range(5))
    parts = split_text(text, MAX_MESSAGE)
    assert len(parts) > 1 and all(len(p) <= MAX_MESSAGE for p in parts)
    assert " ".join(" ".join(parts).split()) == " ".join(text.split())


def test_buttons_become_an_inline_keyboard() -> None:
    markup = keyboard(
        [
            {"title": "Malaysia", "payload": '/inform{"country": "MY"}'},
            {"title": "x" * 30, "payload": "/" + "p" * 80},
        ]
    )
    assert markup is not None
    keys = [k for row in markup.inline_keyboard for k in row]
    assert keys[0].callback_data == '/inform{"country": "MY"}'
    assert keys[1].callback_data == "x" * 30  # payload over 64 bytes: the title is sent


def _settings(db_url: str, rasa_url: str, telegram: FakeTelegram, webhook: bool = True):  # type: ignore[no-untyped-def]
    settings = make_settings(db_url, rasa_url)
    settings.channels.telegram.token = telegram.token
    settings.channels.telegram.base_url = telegram.base_url
    if webhook:
        settings.channels.telegram.webhook_secret = SECRET
        settings.app.public_url = "https://helpdesk.example.org"
    return settings


async def _inbound_count(client: TestClient) -> int:
    async with client.app[SESSIONMAKER]() as s:
        return await s.scalar(select(func.count()).select_from(InboundMessage)) or 0


@pytest.fixture
async def webhook_app(app_db, telegram) -> AsyncIterator[TestClient]:
    settings = _settings(app_db, f"http://127.0.0.1:{free_port()}", telegram)
    async with TestClient(TestServer(create_app(settings), host="127.0.0.1")) as client:
        yield client


async def test_webhook_is_registered_with_the_secret(webhook_app, telegram) -> None:
    assert "setWebhook" in telegram.calls


@pytest.mark.parametrize("secret", [None, "wrong", SECRET + "x"])
async def test_webhook_without_the_right_secret_is_refused_and_stores_nothing(
    webhook_app, secret
) -> None:
    headers = {SECRET_HEADER: secret} if secret else {}
    resp = await webhook_app.post(
        "/telegram/webhook", json=text_update(1, 42, "halo"), headers=headers
    )
    assert resp.status == 403
    assert await _inbound_count(webhook_app) == 0


async def test_webhook_rejects_what_is_not_an_update(webhook_app) -> None:
    for body in (b"not json", b"[]", b'{"foo": 1}'):
        resp = await webhook_app.post(
            "/telegram/webhook", data=body, headers={SECRET_HEADER: SECRET}
        )
        assert resp.status == 400
    for chat_id in ("x" * 200, "12ab", True, 1.5):
        update = text_update(9, 1, "halo")
        update["message"]["chat"]["id"] = chat_id
        resp = await webhook_app.post(
            "/telegram/webhook", json=update, headers={SECRET_HEADER: SECRET}
        )
        assert resp.status == 400, chat_id
    for key, value in (("chat", None), ("text", ["a"]), ("text", 5), ("date", 2**70)):
        update = text_update(10, 1, "halo")
        update["message"][key] = value
        resp = await webhook_app.post(
            "/telegram/webhook", json=update, headers={SECRET_HEADER: SECRET}
        )
        assert resp.status == 400, (key, value)
    query = button_update(11, 1, "/help")
    query["callback_query"]["data"] = {"x": 1}
    resp = await webhook_app.post("/telegram/webhook", json=query, headers={SECRET_HEADER: SECRET})
    assert resp.status == 400
    assert await _inbound_count(webhook_app) == 0


async def test_duplicate_update_is_stored_once_and_answered_once(webhook_app, telegram) -> None:
    # Rasa is down here: the worker gets exactly one holding reply, once.
    for _ in range(3):
        resp = await webhook_app.post(
            "/telegram/webhook", json=text_update(7, 42, "halo"), headers={SECRET_HEADER: SECRET}
        )
        assert resp.status == 200
    assert await _inbound_count(webhook_app) == 1

    async def replied() -> bool:
        return len(telegram.sent) >= 1

    await wait_until(replied)
    [sent] = telegram.sent
    assert str(sent["chat_id"]) == "42" and "sudah kami terima" in sent["text"]


async def test_rate_limit_is_honoured_and_the_reply_sent_once(webhook_app, telegram) -> None:
    telegram.fail_next = [429]
    resp = await webhook_app.post(
        "/telegram/webhook", json=text_update(8, 43, "/start"), headers={SECRET_HEADER: SECRET}
    )
    assert resp.status == 200

    async def delivered() -> bool:
        return len(telegram.sent) == 1

    await wait_until(delivered, timeout=15)
    assert "Pekerja Migran Indonesia" in telegram.sent[0]["text"]


@pytest.mark.e2e
async def test_conversation_over_telegram_with_buttons_and_language_choice(
    servers: Servers, tmp_path, telegram
) -> None:
    settings = _settings(servers.database_url, servers.rasa_url, telegram)
    async with TestClient(TestServer(create_app(settings), host="127.0.0.1")) as client:

        async def post(update: dict) -> None:
            resp = await client.post(
                "/telegram/webhook", json=update, headers={SECRET_HEADER: SECRET}
            )
            assert resp.status == 200

        async def sent(n: int) -> None:
            async def enough() -> bool:
                return len(telegram.sent) >= n

            await wait_until(enough, timeout=30)

        await post(text_update(100, 555, "/start"))
        await sent(1)
        start = telegram.sent[0]
        assert "Privasi" in start["text"]
        payloads = [
            k["callback_data"] for row in start["reply_markup"]["inline_keyboard"] for k in row
        ]
        assert '/choose_language{"language": "en"}' in payloads
        await post(button_update(101, 555, '/choose_language{"language": "en"}'))
        await sent(2)
        assert telegram.sent[1]["text"] == "OK, I will answer in English."
        await post(text_update(102, 555, "nomor kbri brp ya"))  # explicit choice beats detection
        await sent(3)
        asked = telegram.sent[2]
        assert asked["text"].startswith("In which country")
        assert asked["reply_markup"]["inline_keyboard"]
        await post(button_update(103, 555, '/inform{"country": "MY"}'))
        await sent(4)
        assert "Kuala Lumpur" in telegram.sent[3]["text"] and "Source:" in telegram.sent[3]["text"]


@pytest.mark.e2e
async def test_polling_mode_receives_and_answers(servers: Servers, telegram) -> None:
    telegram.updates = [text_update(200, 777, "halo")]
    settings = _settings(servers.database_url, servers.rasa_url, telegram, webhook=False)
    async with TestClient(TestServer(create_app(settings), host="127.0.0.1")):

        async def answered() -> bool:
            return any(str(m["chat_id"]) == "777" for m in telegram.sent)

        await wait_until(answered, timeout=30)
    reply = next(m for m in telegram.sent if str(m["chat_id"]) == "777")
    assert reply["text"].startswith("Halo! Saya asisten")


async def test_a_photo_is_downloaded_kept_and_acknowledged(app_db, telegram, tmp_path) -> None:
    settings = _settings(app_db, f"http://127.0.0.1:{free_port()}", telegram)
    settings.media.dir = tmp_path / "media"
    telegram.files = {"photo-big": b"\xff\xd8jpeg-bytes"}
    async with TestClient(TestServer(create_app(settings), host="127.0.0.1")) as client:
        resp = await client.post(
            "/telegram/webhook",
            json=photo_update(300, 901, "photo-big"),
            headers={SECRET_HEADER: SECRET},
        )
        assert resp.status == 200

        async def kept() -> bool:
            async with client.app[SESSIONMAKER]() as s:
                row = await s.scalar(select(Media))
            return row is not None and row.storage_key is not None

        await wait_until(kept, timeout=15)
        async with client.app[SESSIONMAKER]() as s:
            row = await s.scalar(select(Media))
        assert row is not None and row.kind == "photo" and row.provider_ref == "photo-big"
        stored = client.app[MEDIA_STORE].path(row.storage_key).read_bytes()  # type: ignore[arg-type]
        assert stored == b"\xff\xd8jpeg-bytes"

        async def acknowledged() -> bool:
            return any(m["text"].startswith("Foto diterima") for m in telegram.sent)

        await wait_until(acknowledged, timeout=10)  # without Rasa: the app answers itself


async def test_polling_fetches_an_update_again_until_it_is_stored(app_db, telegram) -> None:
    """The database is locked for longer than its busy timeout: nothing is lost."""
    telegram.updates = [text_update(400, 902, "/start")]
    settings = _settings(app_db, f"http://127.0.0.1:{free_port()}", telegram, webhook=False)
    path = app_db.removeprefix("sqlite:///")
    release = threading.Event()

    def hold_the_database() -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        release.wait(30)
        conn.execute("ROLLBACK")
        conn.close()

    holder = threading.Thread(target=hold_the_database)
    holder.start()
    try:
        async with TestClient(TestServer(create_app(settings), host="127.0.0.1")) as client:

            async def fetched_again() -> bool:  # the store failed after SQLite's busy timeout
                return telegram.calls.count("getUpdates") >= 2

            await wait_until(fetched_again, timeout=30)
            release.set()

            async def answered() -> bool:
                return any(str(m["chat_id"]) == "902" for m in telegram.sent)

            await wait_until(answered, timeout=30)
            assert await _inbound_count(client) == 1
    finally:
        release.set()
        holder.join()
    assert sum(str(m["chat_id"]) == "902" for m in telegram.sent) == 1


async def test_a_long_reply_resumes_after_the_last_part_telegram_accepted(
    sessions, telegram
) -> None:
    from telegram import Bot

    parts_seen: list[str] = []

    async def refuse_the_second_part_once(params: dict) -> int | None:
        parts_seen.append(params["text"])
        return 429 if len(parts_seen) == 2 else None

    telegram.send_fault = refuse_the_second_part_once
    text = "\n\n".join(f"Bagian {i}: " + "kata " * 700 for i in range(3))
    async with sessions() as s, s.begin():
        contact = Contact(channel="telegram", channel_user_id="903")
        s.add(contact)
        await s.flush()
        s.add(OutboundMessage(contact_id=contact.id, text=text))
    bot = Bot(telegram.token, base_url=telegram.base_url)
    await bot.initialize()
    try:
        outbox = Outbox(sessions, {"telegram": TelegramSender(bot, min_interval=0)})
        assert await outbox.deliver_one() is False  # part 1 sent, part 2 refused (429)
        async with sessions() as s, s.begin():
            row = await s.scalar(select(OutboundMessage))
            assert row is not None and row.parts_sent == 1
            row.next_attempt_at = None  # the retry_after has passed
        assert await outbox.deliver_one() is True
    finally:
        await bot.shutdown()
    expected = split_text(text, MAX_MESSAGE)
    assert [m["text"] for m in telegram.sent] == expected  # each part exactly once, in order


async def test_one_slow_or_paced_chat_does_not_hold_up_the_others(app_db, telegram) -> None:
    from telegram import Bot

    engine = create_engine(app_db)  # a pool: the outbox's workers use connections at once
    sessions = create_sessionmaker(engine)

    async def slow_for_chat_1(params: dict) -> int | None:
        if str(params["chat_id"]) == "1":
            await asyncio.sleep(3)  # a slow API call for this chat
        return None

    telegram.send_fault = slow_for_chat_1
    async with sessions() as s, s.begin():
        ids = {}
        for chat in ("1", "2", "3"):
            contact = Contact(channel="telegram", channel_user_id=chat)
            s.add(contact)
            await s.flush()
            ids[chat] = contact.id
        for chat, text in (("1", "a1"), ("2", "b1"), ("2", "b2"), ("3", "c1")):
            s.add(OutboundMessage(contact_id=ids[chat], text=text))
    bot = Bot(telegram.token, base_url=telegram.base_url)
    await bot.initialize()
    outbox = Outbox(sessions, {"telegram": TelegramSender(bot)}, workers=3)
    worker = asyncio.create_task(outbox.run(tick=0.2))
    try:

        async def all_sent() -> bool:
            return len(telegram.sent) == 4

        await wait_until(all_sent, timeout=15)
    finally:
        worker.cancel()
        await bot.shutdown()
        await engine.dispose()
    order = [m["text"] for m in telegram.sent]
    assert order.index("b1") < order.index("b2")  # one chat stays in order
    assert order[-1] == "a1"  # the slow chat came last, the others did not wait for it
    assert order.index("c1") < order.index("b2")  # b2 waits its 1 s pace; c1 does not
