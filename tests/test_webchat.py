"""The web chat API: input, the server-issued sender cookie, cross-site and flood defences.

These tests run the real app on 127.0.0.1; Rasa is pointed at a closed port, so every
accepted message is stored and answered with the holding reply. Cookies are handled by
hand (a client with no cookie jar), as a browser would: what the server sets is sent back.
The test of the urgent-case cap runs the real Rasa and action servers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import DummyCookieJar, FormData
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from bot.app import create_app
from bot.keys import SESSIONMAKER
from devtools.net import free_port
from pmi import messages
from pmi.db import create_engine, create_sessionmaker
from pmi.models import Case, Contact, InboundMessage, InboundStatus, StaffAlert
from pmi.settings import Settings, load_settings
from scripts.run import stack_env
from tests.support import Servers, joined, make_settings

COOKIE = "pmi_chat"
KEMLU = "+62 812 9007 0027"  # in every emergency contact list


def _settings(app_db: str, **webchat: Any) -> Settings:
    # Nothing listens on this port: Rasa is "down".
    settings = make_settings(app_db, f"http://127.0.0.1:{free_port()}")
    web = settings.channels.webchat.model_copy(update=webchat)
    return settings.model_copy(
        update={"channels": settings.channels.model_copy(update={"webchat": web})}
    )


def _client(settings: Settings) -> TestClient:
    app = create_app(settings)
    return TestClient(TestServer(app, host="127.0.0.1"), cookie_jar=DummyCookieJar())


@pytest.fixture
async def client(app_db: str) -> AsyncIterator[TestClient]:
    async with _client(_settings(app_db)) as client:
        yield client


async def _inbound(client: TestClient) -> list[InboundMessage]:
    async with client.app[SESSIONMAKER]() as s:
        return list(await s.scalars(select(InboundMessage).order_by(InboundMessage.id)))


async def _chat(client: TestClient, cookie: str | None, text: str, **extra: Any):  # type: ignore[no-untyped-def]
    cookies = {COOKIE: cookie} if cookie else None
    return await client.post("/api/chat", json={"text": text, **extra}, cookies=cookies)


def _issued(resp) -> str:  # type: ignore[no-untyped-def]
    return resp.cookies[COOKIE].value


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b"{}", "'text'"),
        (b'{"text": 5}', "'text'"),
        (b'{"text": "   "}', "empty"),
        (b'{"sender": "u1", "text": "halo"}', "'sender' is not accepted"),
        (b'{"text": "halo", "id": "../x y"}', "'id'"),
        (b'{"text": "' + b"a" * 5000 + b'"}', "at most"),
    ],
)
async def test_bad_input_gets_a_clear_400_and_nothing_stored(client, body, reason) -> None:
    resp = await client.post("/api/chat", data=body, headers={"Content-Type": "application/json"})
    assert resp.status == 400
    assert reason in (await resp.json())["error"]
    assert COOKIE not in resp.cookies  # no conversation for a refused message
    assert await _inbound(client) == []


async def test_oversized_body_is_refused(client) -> None:
    headers = {"Content-Type": "application/json"}
    resp = await client.post("/api/chat", data=b"x" * (200 * 1024), headers=headers)
    assert resp.status == 413
    assert await _inbound(client) == []


def _form(kind: str) -> dict[str, Any]:
    """A body as a cross-site <form> (or a request with no type) would send it."""
    if kind == "multipart":
        form = FormData()
        form.add_field("text", "tolong")
        form.add_field("file", b"x", filename="x.txt")
        return {"data": form}
    if kind == "urlencoded":
        return {"data": {"text": "tolong"}}
    headers = {"Content-Type": "text/plain"} if kind == "text/plain" else {}
    return {"data": b'{"text": "tolong"}', "headers": headers}


@pytest.mark.parametrize("kind", ["text/plain", "urlencoded", "multipart", "none"])
async def test_only_json_is_accepted_so_no_web_page_can_post_a_form(client, kind) -> None:
    for path in ("/api/chat", "/api/chat/updates", "/api/chat/reset"):
        resp = await client.post(path, **_form(kind))
        assert resp.status == 415, path
        assert "application/json" in (await resp.json())["error"]
    assert await _inbound(client) == []


async def test_a_request_from_another_origin_is_refused(app_db) -> None:
    settings = _settings(app_db)
    settings.app.public_url = "https://helpdesk.example.org"
    async with _client(settings) as client:
        for origin in ("https://evil.example", "null", "http://127.0.0.1.evil.example"):
            for path in ("/api/chat", "/api/chat/updates", "/api/chat/reset"):
                resp = await client.post(path, json={"text": "tolong"}, headers={"Origin": origin})
                assert resp.status == 403, (origin, path)
                assert "other web sites" in (await resp.json())["error"]
        assert await _inbound(client) == []
        own = str(client.make_url("")).rstrip("/")
        for origin in (own, "https://helpdesk.example.org", None):
            headers = {"Origin": origin} if origin else {}
            resp = await client.post("/api/chat", json={"text": "halo"}, headers=headers)
            assert resp.status == 200, origin


async def test_the_server_issues_the_sender_in_a_signed_strict_httponly_cookie(client) -> None:
    resp = await _chat(client, None, "halo")
    assert resp.status == 200
    header = resp.headers["Set-Cookie"]
    assert header.startswith(f"{COOKIE}=")
    assert "HttpOnly" in header and "SameSite=Strict" in header and "Path=/" in header
    assert "Max-Age=86400" in header
    assert "Secure" not in header  # plain http on 127.0.0.1
    sender = _issued(resp).split(".")[0]
    assert len(sender) == 32 and int(sender, 16) >= 0  # 128 random bits
    [stored] = await _inbound(client)
    async with client.app[SESSIONMAKER]() as s:
        contact = await s.get(Contact, stored.contact_id)
    assert contact is not None and contact.channel_user_id == sender
    # A forged or altered cookie is not a conversation: the server starts a new one.
    forged = f"{'0' * 32}.{_issued(resp).split('.', 1)[1]}"
    again = await _chat(client, forged, "halo lagi")
    assert _issued(again).split(".")[0] not in (sender, "0" * 32)


async def test_behind_https_the_cookie_is_secure_and_host_only(app_db) -> None:
    settings = _settings(app_db)
    settings.app.public_url = "https://helpdesk.example.org"
    async with _client(settings) as client:
        resp = await _chat(client, None, "halo")
        header = resp.headers["Set-Cookie"]
        assert header.startswith(f"__Host-{COOKIE}=") and "Secure" in header
        assert "HttpOnly" in header and "SameSite=Strict" in header and "Path=/" in header


async def test_rasa_down_gives_one_holding_reply_and_keeps_messages(client) -> None:
    first = await _chat(client, None, "halo", id="a")
    second = await _chat(client, _issued(first), "tolong", id="b")
    replies_1 = (await first.json())["messages"]
    replies_2 = (await second.json())["messages"]
    assert first.status == second.status == 200
    assert COOKIE not in second.cookies  # the conversation's cookie is kept, not re-issued
    assert len(replies_1) == 1 and "sudah kami terima" in replies_1[0]["text"]
    assert replies_2 == []  # one holding reply per outage, not one per message
    stored = await _inbound(client)
    assert [(m.text, m.status) for m in stored] == [
        ("halo", InboundStatus.PENDING),
        ("tolong", InboundStatus.PENDING),
    ]


async def test_duplicate_client_id_is_stored_once_per_conversation(client) -> None:
    first = await _chat(client, None, "halo", id="same")
    cookie = _issued(first)
    for _ in range(2):
        assert (await _chat(client, cookie, "halo", id="same")).status == 200
    assert len(await _inbound(client)) == 1
    # Another conversation's message with the same id is its own message.
    assert (await _chat(client, None, "halo", id="same")).status == 200
    assert len(await _inbound(client)) == 2


async def _queue_for(client: TestClient, contact_id: int, text: str) -> None:
    async with client.app[SESSIONMAKER]() as s, s.begin():
        await messages.add_outbound(s, contact_id, text)


async def test_a_client_without_the_cookie_sees_nothing_of_another_conversation(client) -> None:
    first = await _chat(client, None, "gaji saya belum dibayar")
    cookie = _issued(first)
    [stored] = await _inbound(client)
    await _queue_for(client, stored.contact_id, "Halo, saya petugas.")
    # Another browser: no cookie, so no updates, and its message is a conversation of its own.
    stranger = await client.post("/api/chat/updates", json={})
    assert (await stranger.json())["messages"] == []
    other = await _chat(client, None, "halo")
    assert "Halo, saya petugas." not in str(await other.json())
    assert _issued(other) != cookie
    assert len({m.contact_id for m in await _inbound(client)}) == 2
    # The first browser gets the staff reply, once, by POST.
    mine = await client.post("/api/chat/updates", json={}, cookies={COOKIE: cookie})
    assert "Halo, saya petugas." in [m["text"] for m in (await mine.json())["messages"]]
    again = await client.post("/api/chat/updates", json={}, cookies={COOKIE: cookie})
    assert "Halo, saya petugas." not in str(await again.json())


async def test_updates_are_taken_by_post_only(client) -> None:
    first = await _chat(client, None, "halo")
    [stored] = await _inbound(client)
    await _queue_for(client, stored.contact_id, "later")
    cookie = {COOKIE: _issued(first)}
    get = await client.get("/api/chat/updates", params={"sender": "anything"}, cookies=cookie)
    assert get.status == 405  # a GET has no side effects: the reply is still queued
    resp = await client.post("/api/chat/updates", json={}, cookies=cookie)
    # (The retry loop may have queued another holding reply meanwhile: Rasa is down.)
    assert "later" in [m["text"] for m in (await resp.json())["messages"]]


async def test_reset_forgets_the_cookie_and_the_next_message_is_a_new_conversation(
    client,
) -> None:
    first = await _chat(client, None, "halo")
    cookie = _issued(first)
    reset = await client.post("/api/chat/reset", json={}, cookies={COOKIE: cookie})
    assert reset.status == 200
    header = reset.headers["Set-Cookie"]
    assert header.startswith(f"{COOKIE}=") and "Max-Age=0" in header
    nxt = await _chat(client, None, "halo")  # the browser dropped the cookie
    assert _issued(nxt).split(".")[0] != cookie.split(".")[0]
    assert len({m.contact_id for m in await _inbound(client)}) == 2


async def test_page_and_health(client) -> None:
    page = await client.get("/")
    assert page.status == 200
    html = await page.text()
    assert "/api/chat" in html and "/api/chat/reset" in html
    assert "localStorage" not in html and "sender" not in html
    assert page.headers["X-Frame-Options"] == "DENY"
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/readyz")).status == 200


async def test_the_web_chat_is_off_unless_enabled(app_db) -> None:
    assert load_settings(env={}).channels.webchat.enabled is False
    assert load_settings(env={"WEBCHAT_ENABLED": "1"}).channels.webchat.enabled is True
    assert load_settings(env={"WEBCHAT_ENABLED": "true"}).channels.webchat.enabled is True
    assert stack_env()["WEBCHAT_ENABLED"] == "1"  # make run: the local web chat is on
    settings = make_settings(app_db, webchat=False)
    async with _client(settings) as client:
        assert (await client.get("/")).status == 404
        for path in ("/api/chat", "/api/chat/updates", "/api/chat/reset"):
            assert (await client.post(path, json={"text": "halo"})).status == 404, path
        assert (await client.get("/healthz")).status == 200


# --- floods ---------------------------------------------------------------------------


async def _refused(resp) -> str:  # type: ignore[no-untyped-def]
    assert resp.status == 429, await resp.text()
    assert int(resp.headers["Retry-After"]) > 0
    return (await resp.json())["error"]


async def test_one_address_gets_only_so_many_new_conversations(app_db) -> None:
    settings = _settings(app_db)
    settings.app.trusted_proxies = ["127.0.0.1"]  # the test client is "the proxy"
    settings.app.public_url = "https://helpdesk.example.org"  # a public configuration
    async with _client(settings) as client:
        name = f"__Host-{COOKIE}"

        async def anonymous(ip: str):  # type: ignore[no-untyped-def]
            return await client.post(
                "/api/chat", json={"text": "halo"}, headers={"X-Forwarded-For": ip}
            )

        for _ in range(10):
            assert (await anonymous("203.0.113.5")).status == 200
        assert "new conversations" in await _refused(await anonymous("203.0.113.5"))
        # Another address is not held back; a conversation already open goes on.
        other = await anonymous("198.51.100.8")
        assert other.status == 200
        held = await client.post(
            "/api/chat",
            json={"text": "masih di sini"},
            headers={"X-Forwarded-For": "203.0.113.5"},
            cookies={name: other.cookies[name].value},
        )
        assert held.status == 200
        async with client.app[SESSIONMAKER]() as s:
            contacts = await s.scalar(select(func.count()).select_from(Contact))
        assert contacts == 11


async def test_a_forwarded_for_header_from_a_client_does_not_bypass_the_limit(app_db) -> None:
    async with _client(_settings(app_db)) as client:  # no trusted proxies
        for i in range(10):
            fake = {"X-Forwarded-For": f"10.9.9.{i}"}
            assert (await client.post("/api/chat", json={"text": "x"}, headers=fake)).status == 200
        fake = {"X-Forwarded-For": "10.9.9.99"}
        await _refused(await client.post("/api/chat", json={"text": "x"}, headers=fake))


async def test_messages_per_address_and_overall_are_limited(app_db) -> None:
    async with _client(_settings(app_db, messages_per_ip_minute=5)) as client:
        cookie = _issued(await _chat(client, None, "1"))
        for i in range(4):
            assert (await _chat(client, cookie, f"m{i}")).status == 200
        assert "too many messages" in await _refused(await _chat(client, cookie, "6"))
    settings = _settings(app_db, messages_per_minute=4)
    settings.app.trusted_proxies = ["127.0.0.1"]
    async with _client(settings) as client:
        for i in range(4):
            fwd = {"X-Forwarded-For": f"198.51.100.{i}"}
            assert (await client.post("/api/chat", json={"text": "x"}, headers=fwd)).status == 200
        fwd = {"X-Forwarded-For": "198.51.100.200"}
        refused = await client.post("/api/chat", json={"text": "x"}, headers=fwd)
        assert "busy" in await _refused(refused)


@pytest.mark.e2e
async def test_six_emergencies_from_one_address_open_at_most_three_urgent_cases(
    servers: Servers,
) -> None:
    settings = make_settings(servers.database_url, servers.rasa_url)
    settings.rasa.token = servers.rasa_token
    settings.app.public_url = "https://helpdesk.example.org"
    name = f"__Host-{COOKIE}"
    senders, replies = [], []
    async with _client(settings) as client:
        for text in ["darurat"] * 5 + ["saya mau bunuh diri"]:
            resp = await client.post("/api/chat", json={"text": text})  # a new sender each time
            assert resp.status == 200, await resp.text()
            senders.append(resp.cookies[name].value.split(".")[0])
            replies.append(joined((await resp.json())["messages"]))
    engine = create_engine(servers.database_url)
    async with create_sessionmaker(engine)() as s:
        cases = list(
            await s.scalars(
                select(Case)
                .join(Contact, Contact.id == Case.contact_id)
                .where(Contact.channel == "webchat", Contact.channel_user_id.in_(senders))
            )
        )
        alerts = await s.scalar(
            select(func.count())
            .select_from(StaffAlert)
            .where(StaffAlert.case_id.in_([c.id for c in cases]))
        )
    await engine.dispose()
    assert len(set(senders)) == 6
    assert len(cases) == 3 and {c.priority for c in cases} == {"urgent"}
    assert alerts == 3
    for reply in replies[:3]:
        assert "PMI-" in reply and KEMLU in reply, reply  # a case, and the contacts
    for reply in replies[3:5]:
        assert KEMLU in reply and "PMI-" not in reply, reply  # the contacts, no case
    assert "PMI-" not in replies[5] and "sudah memberi tahu petugas" not in replies[5]
    assert "Kemlu" in replies[5]  # the crisis lines, with no claim that staff were told
