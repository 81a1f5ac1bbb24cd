"""WhatsApp through pywa's real async client and a local fake Graph API, over real HTTP."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from bot.app import create_app
from bot.keys import MEDIA_STORE, SESSIONMAKER
from bot.whatsapp import parse_webhook, signature_valid
from devtools.fake_whatsapp import (
    PHONE_ID,
    FakeGraph,
    button_reply,
    media_message,
    signed,
    status,
    text_message,
    webhook_body,
)
from devtools.net import free_port
from pmi import staff
from pmi.db import utcnow
from pmi.messages import WINDOW_CLOSED
from pmi.models import Case, Contact, InboundMessage, Media, OutboundMessage, OutboundStatus
from tests.console_helpers import PASSWORD, login
from tests.support import Servers, make_settings, wait_until

SECRET = "wa-app-secret"
VERIFY = "wa-verify-token"
WORKER = "6281234567890"


# --- parsing and signatures (no network) ----------------------------------------------


def test_the_signature_is_an_hmac_of_the_raw_body() -> None:
    raw, headers = signed(webhook_body([text_message(WORKER, "wamid.1", "halo")]), SECRET)
    assert signature_valid(SECRET, raw, headers["X-Hub-Signature-256"])
    assert not signature_valid(SECRET, raw + b" ", headers["X-Hub-Signature-256"])
    assert not signature_valid("other", raw, headers["X-Hub-Signature-256"])
    assert not signature_valid(SECRET, raw, "sha256=")


def test_every_message_of_a_body_is_parsed_not_only_the_first() -> None:
    body = webhook_body(
        [
            text_message(WORKER, "wamid.1", "halo"),
            button_reply(WORKER, "wamid.2", '/inform{"country": "MY"}', "Malaysia"),
            media_message(WORKER, "wamid.3", "image", "m1", "image/jpeg", "ini paspor saya"),
            media_message(WORKER, "wamid.4", "audio", "m2", "audio/ogg"),
            {"from": WORKER, "id": "wamid.5", "type": "reaction", "reaction": {"emoji": "👍"}},
            {
                "from": WORKER,
                "id": "wamid.6",
                "type": "location",
                "location": {"latitude": 3.15, "longitude": 101.7, "name": "Masjid"},
            },
        ],
        statuses=[status("wamid.OUT", "read")],
    )
    messages, statuses = parse_webhook(body, PHONE_ID)
    assert [m.message_id for m in messages] == [
        "wamid.1",
        "wamid.2",
        "wamid.3",
        "wamid.4",
        "wamid.6",
    ]
    assert messages[1].text == '/inform{"country": "MY"}'
    assert messages[2].media and messages[2].media.kind == "photo"
    assert messages[2].text == "ini paspor saya"
    assert messages[3].media and messages[3].media.kind == "voice" and messages[3].text == ""
    assert "3.15,101.7" in messages[4].text and "Masjid" in messages[4].text
    assert statuses[0].message_id == "wamid.OUT" and statuses[0].status == "read"


def test_other_phone_numbers_and_bad_shapes() -> None:
    other = webhook_body([text_message(WORKER, "wamid.1", "halo")], phone_id="999")
    assert parse_webhook(other, PHONE_ID) == ([], [])
    for bad in ([], {"entry": "x"}, "text", None):
        with pytest.raises(ValueError):
            parse_webhook(bad, PHONE_ID)
    with pytest.raises(ValueError):
        parse_webhook(webhook_body([{"type": "text", "text": {"body": "no sender"}}]), PHONE_ID)
    for wa_id, wamid in (("6" * 65, "wamid.1"), (WORKER, "w" * 129), ("", "wamid.1")):
        with pytest.raises(ValueError):
            parse_webhook(webhook_body([text_message(wa_id, wamid, "halo")]), PHONE_ID)


# --- the app with the fake Graph API ----------------------------------------------------


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraph]:
    fake = FakeGraph()
    await fake.start()
    yield fake
    await fake.stop()


def _settings(db_url: str, rasa_url: str, graph: FakeGraph, tmp_path, template: str | None = None):  # type: ignore[no-untyped-def]
    settings = make_settings(db_url, rasa_url)
    wa = settings.channels.whatsapp
    wa.phone_number_id, wa.token, wa.app_secret = PHONE_ID, graph.token, SECRET
    wa.verify_token, wa.graph_url, wa.reopen_template = VERIFY, graph.url, template
    settings.media.dir = tmp_path / "media"
    return settings


async def _post(client: TestClient, body: dict, secret: str = SECRET) -> int:
    raw, headers = signed(body, secret)
    resp = await client.post("/whatsapp/webhook", data=raw, headers=headers)
    return resp.status


async def _sent(graph: FakeGraph, n: int) -> None:
    """Wait until the fake Graph API has received `n` messages."""

    async def enough() -> bool:
        return len(graph.sent) >= n

    await wait_until(enough, timeout=30)


async def _count(client: TestClient, model) -> int:  # type: ignore[no-untyped-def]
    async with client.app[SESSIONMAKER]() as s:
        return await s.scalar(select(func.count()).select_from(model)) or 0


@pytest.fixture
async def offline_app(app_db, graph, tmp_path) -> AsyncIterator[TestClient]:
    """The app with WhatsApp on and Rasa unreachable (checks that need no answers)."""
    settings = _settings(app_db, f"http://127.0.0.1:{free_port()}", graph, tmp_path)
    async with TestClient(TestServer(create_app(settings), host="127.0.0.1")) as client:
        yield client


async def test_verification_handshake(offline_app) -> None:
    query = {"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "1158201444"}
    resp = await offline_app.get("/whatsapp/webhook", params=query)
    assert resp.status == 200 and await resp.text() == "1158201444"
    for wrong in ({**query, "hub.verify_token": "nope"}, {**query, "hub.mode": "unsubscribe"}):
        assert (await offline_app.get("/whatsapp/webhook", params=wrong)).status == 403


async def test_unsigned_or_badly_signed_bodies_are_refused_and_store_nothing(offline_app) -> None:
    body = webhook_body([text_message(WORKER, "wamid.1", "halo")])
    raw, _ = signed(body, SECRET)
    resp = await offline_app.post("/whatsapp/webhook", data=raw)
    assert resp.status == 401
    assert await _post(offline_app, body, secret="not-the-secret") == 403
    assert await _count(offline_app, InboundMessage) == 0


async def test_signed_garbage_is_a_bad_request(offline_app) -> None:
    raw = b"not json"
    signature = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    headers = {"X-Hub-Signature-256": signature}
    resp = await offline_app.post("/whatsapp/webhook", data=raw, headers=headers)
    assert resp.status == 400


async def test_status_callbacks_move_the_outbound_message_forward(offline_app) -> None:
    async with offline_app.app[SESSIONMAKER]() as s, s.begin():
        contact = Contact(channel="whatsapp", channel_user_id=WORKER)
        s.add(contact)
        await s.flush()
        for n in (1, 2):
            s.add(
                OutboundMessage(
                    contact_id=contact.id,
                    text="x",
                    status=OutboundStatus.SENT,
                    external_id=f"wamid.OUT{n}",
                )
            )
    body = webhook_body(
        statuses=[
            status("wamid.OUT1", "delivered"),
            status("wamid.OUT1", "read"),
            status("wamid.OUT2", "failed", code=131026),
        ]
    )
    assert await _post(offline_app, body) == 200
    async with offline_app.app[SESSIONMAKER]() as s:
        first, second = (
            await s.scalars(select(OutboundMessage).order_by(OutboundMessage.id))
        ).all()
    assert first.delivered_at and first.read_at and first.status == OutboundStatus.SENT
    assert second.status == OutboundStatus.FAILED and "131026" in (second.last_error or "")


@pytest.mark.e2e
async def test_round_trip_with_buttons_a_list_and_a_duplicate(
    servers: Servers, graph: FakeGraph, tmp_path
) -> None:
    settings = _settings(servers.database_url, servers.rasa_url, graph, tmp_path)
    worker = "6281200000001"
    async with TestClient(TestServer(create_app(settings), host="127.0.0.1")) as client:
        hello = webhook_body([text_message(worker, "wamid.A1", "halo min")])
        assert await _post(client, hello) == 200
        await _sent(graph, 1)
        assert await _post(client, hello) == 200  # Meta retries the same body
        greeting = graph.sent[0]
        assert greeting["to"] == worker and greeting["type"] == "interactive"
        assert greeting["interactive"]["type"] == "button"
        assert "Halo! Saya asisten" in greeting["interactive"]["body"]["text"]
        ids = [b["reply"]["id"] for b in greeting["interactive"]["action"]["buttons"]]
        assert "/help" in ids

        await _post(client, webhook_body([text_message(worker, "wamid.A2", "nomor kbri brp")]))
        await _sent(graph, 2)
        asked = graph.sent[1]  # seven countries: a list, not buttons
        assert asked["interactive"]["type"] == "list"
        rows = asked["interactive"]["action"]["sections"][0]["rows"]
        assert '/inform{"country": "MY"}' in [r["id"] for r in rows]

        await _post(client, webhook_body([button_reply(worker, "wamid.A3", rows[0]["id"])]))
        await _sent(graph, 3)
        assert "Kuala Lumpur" in graph.texts(worker)[2]
        assert len(graph.sent) == 3  # the duplicate was not answered twice
        assert await _count(client, InboundMessage) >= 3


@pytest.mark.e2e
async def test_rate_limit_from_the_graph_api_is_retried_without_duplicates(
    servers: Servers, graph: FakeGraph, tmp_path
) -> None:
    settings = _settings(servers.database_url, servers.rasa_url, graph, tmp_path)
    worker = "6281200000002"
    graph.fail_next = [(400, 130429), (503, 131016)]  # throughput limit, then unavailable
    async with TestClient(TestServer(create_app(settings), host="127.0.0.1")) as client:
        await _post(client, webhook_body([text_message(worker, "wamid.B1", "makasih ya")]))

        async def recorded() -> OutboundMessage | None:
            async with client.app[SESSIONMAKER]() as s:
                return await s.scalar(
                    select(OutboundMessage).join(Contact).where(Contact.channel_user_id == worker)
                )

        async def delivered() -> bool:
            # Sent, and the sending recorded (the Graph API sees it a moment before).
            row = await recorded()
            return row is not None and row.status == OutboundStatus.SENT

        await wait_until(delivered, timeout=60)
        row = await recorded()
    assert graph.texts(worker) == [graph.texts(worker)[0]] and "Sama-sama" in graph.texts()[0]
    assert row is not None and row.attempts == 3 and row.external_id == "wamid.FAKE1"


async def _queue_reply_outside_window(client: TestClient, worker: str) -> None:
    async with client.app[SESSIONMAKER]() as s, s.begin():
        contact = Contact(
            channel="whatsapp",
            channel_user_id=worker,
            language="id",
            last_inbound_at=utcnow() - timedelta(hours=30),
        )
        s.add(contact)
        await s.flush()
        s.add(OutboundMessage(contact_id=contact.id, text="Kasus Anda sudah ditangani."))


async def test_outside_the_window_a_template_reopens_and_the_reply_waits(
    app_db, graph: FakeGraph, tmp_path
) -> None:
    settings = _settings(app_db, f"http://127.0.0.1:{free_port()}", graph, tmp_path, "pmi_update")
    async with TestClient(TestServer(create_app(settings), host="127.0.0.1")) as client:
        await _queue_reply_outside_window(client, WORKER)

        async def templated() -> bool:
            return any(m["type"] == "template" for m in graph.sent)

        await wait_until(templated, timeout=10)
        template = graph.sent[0]
        assert template["template"]["name"] == "pmi_update"
        assert template["template"]["language"]["code"] == "id"
        async with client.app[SESSIONMAKER]() as s:
            held = await s.scalar(select(OutboundMessage).where(OutboundMessage.kind == "reply"))
        assert held is not None and held.status == OutboundStatus.PENDING
        assert held.last_error == WINDOW_CLOSED
        # the worker answers the template: the window opens and the reply goes out, once
        await _post(client, webhook_body([text_message(WORKER, "wamid.C1", "ok")]))

        async def delivered() -> bool:
            return "Kasus Anda sudah ditangani." in graph.texts(WORKER)

        await wait_until(delivered, timeout=10)
    assert [m["type"] for m in graph.sent].count("template") == 1


async def test_outside_the_window_without_a_template_the_reply_is_held_for_staff(
    offline_app, graph: FakeGraph
) -> None:
    await _queue_reply_outside_window(offline_app, WORKER)

    async def held() -> bool:
        async with offline_app.app[SESSIONMAKER]() as s:
            row = await s.scalar(select(OutboundMessage))
        return row is not None and row.last_error == WINDOW_CLOSED

    await wait_until(held, timeout=10)
    assert graph.sent == []
    async with offline_app.app[SESSIONMAKER]() as s, s.begin():
        await staff.create_user(s, "operator1", PASSWORD, "operator")
        contact = await s.scalar(select(Contact).where(Contact.channel_user_id == WORKER))
    await login(offline_app, "operator1")
    page = await offline_app.get(f"/console/conversations/{contact.public_id}")
    assert "Belum terkirim: outside the 24-hour window" in await page.text()


@pytest.mark.e2e
async def test_photos_and_voice_notes_are_kept_with_the_open_case_and_acknowledged(
    servers: Servers, graph: FakeGraph, tmp_path
) -> None:
    settings = _settings(servers.database_url, servers.rasa_url, graph, tmp_path)
    worker = "6281200000003"
    photo = b"\xff\xd8\xff\xe0fake-jpeg-bytes" * 100
    graph.media = {"m-photo": (photo, "image/jpeg"), "m-voice": (b"OggS-voice", "audio/ogg")}
    async with TestClient(TestServer(create_app(settings), host="127.0.0.1")) as client:
        emergency = "tolong saya dipukul majikan di kuala lumpur malaysia"
        await _post(client, webhook_body([text_message(worker, "wamid.D1", emergency)]))
        await _sent(graph, 1)

        def said(check: Callable[[str], bool]) -> Callable[[], Awaitable[bool]]:
            async def seen() -> bool:
                return any(check(t) for t in graph.texts(worker))

            return seen

        await _post(
            client,
            webhook_body([media_message(worker, "wamid.D2", "image", "m-photo", "image/jpeg")]),
        )
        # The emergency turn's replies may still be arriving: wait for the answer itself.
        await wait_until(said(lambda t: t.startswith("Foto diterima")), timeout=15)
        await _post(
            client,
            webhook_body([media_message(worker, "wamid.D3", "audio", "m-voice", "audio/ogg")]),
        )
        await wait_until(said(lambda t: "mohon tulis" in t), timeout=15)

        async def downloaded() -> bool:
            async with client.app[SESSIONMAKER]() as s:
                rows = (
                    await s.scalars(
                        select(Media).join(Contact).where(Contact.channel_user_id == worker)
                    )
                ).all()
            return len(rows) == 2 and all(r.storage_key for r in rows)

        await wait_until(downloaded, timeout=20)
        async with client.app[SESSIONMAKER]() as s:
            contact = await s.scalar(select(Contact).where(Contact.channel_user_id == worker))
            case = await s.scalar(select(Case).where(Case.contact_id == contact.id))
            rows = (await s.scalars(select(Media).where(Media.contact_id == contact.id))).all()
        assert case is not None and all(r.case_id == case.id for r in rows)
        kept = client.app[MEDIA_STORE].path(rows[0].storage_key).read_bytes()
        assert kept == photo and rows[0].sha256 == hashlib.sha256(photo).hexdigest()
        assert {r.kind for r in rows} == {"photo", "voice"}


@pytest.mark.e2e
async def test_a_caption_under_a_photo_is_read_like_any_message(
    servers: Servers, graph: FakeGraph, tmp_path
) -> None:
    settings = _settings(servers.database_url, servers.rasa_url, graph, tmp_path)
    worker = "6281200000004"
    graph.media = {"m-bruise": (b"jpeg", "image/jpeg")}
    caption = "tolong saya dipukul majikan, ini fotonya"
    body = webhook_body(
        [media_message(worker, "wamid.E1", "image", "m-bruise", "image/jpeg", caption)]
    )
    async with TestClient(TestServer(create_app(settings), host="127.0.0.1")) as client:
        assert await _post(client, body) == 200

        async def answered() -> bool:
            return len(graph.texts(worker)) >= 2

        await wait_until(answered, timeout=30)
        async with client.app[SESSIONMAKER]() as s:
            contact = await s.scalar(select(Contact).where(Contact.channel_user_id == worker))
            case = await s.scalar(select(Case).where(Case.contact_id == contact.id))
    texts = graph.texts(worker)
    assert texts[0].startswith("Foto diterima")
    assert any("dalam bahaya" in t for t in texts[1:])
    assert case is not None and case.priority == "urgent"
