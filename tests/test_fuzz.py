"""Bad input at every HTTP entry point of the real app, on SQLite and on PostgreSQL.

The app runs on 127.0.0.1 in a thread of its own (Rasa is a closed port: messages get the
holding reply), with Telegram (a local fake Bot API) and WhatsApp webhooks switched on,
and Hypothesis sends it random and hostile input: bodies that are not JSON or too big,
wrong types, unicode edge cases (lone surrogates, RTL overrides, zero-width, NUL, control
characters), HTML/script and SQL metacharacters; to the web chat API, the webhooks (with
and without their secret or signature), the console login and every console POST form
(found in the router, so new forms are fuzzed too) with a logged-in session and its CSRF
token, and every console page's query string.

Every answer must be below 500 and an error must say what was wrong; afterwards no text
column of any table holds a control character or a surrogate, and markup a worker sent is
shown escaped in the console. `HYPOTHESIS_PROFILE=faults` (make test-faults) runs many
more examples.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import secrets
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, quote_from_bytes

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from bot.app import create_app
from bot.keys import SESSIONMAKER
from bot.webchat import GUARD, cookie_name
from devtools.databases import create_postgres_database, drop_postgres_database
from devtools.fake_telegram import FakeTelegram
from pmi.models import Contact
from tests.fuzz_app import (
    TELEGRAM_SECRET,
    WA_SECRET,
    WA_VERIFY,
    LiveApp,
    bad_texts,
    check_answer,
    cookie_header,
    cookies_of,
    draw_route,
    fuzz_settings,
    log_in,
    seed_app,
    whatsapp_app,
)
from tests.fuzz_inputs import (
    FORM_FIELDS,
    FUZZ,
    QUERY_KEYS,
    as_json,
    bodies,
    form_body,
    json_values,
    nasty_text,
    scalars,
    telegram_update,
    wa_message,
)
from tests.support import POSTGRES_URL, migrated, postgres_reachable

MAX_LINE = 8190  # aiohttp's limit on the request line
CASES: Counter[str] = Counter()  # fuzz cases tried, per entry point


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """The app with every channel on, a staff admin and one case, on each backend."""
    live = LiveApp()
    scratch = None
    try:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'fuzz.db'}"
        else:
            if not postgres_reachable():
                pytest.skip("PostgreSQL not reachable")
            url = live.run(
                create_postgres_database(POSTGRES_URL, f"pmi_fuzz_{secrets.token_hex(4)}")
            )
            scratch = url
        live.run(migrated(url))
        fake = FakeTelegram()
        live.run(fake.start())
        live.run(live.serve(create_app(fuzz_settings(url, fake))))
        yield live, live.run(seed_app(live.app))
        live.run(fake.stop())
    finally:
        live.close()
        if scratch:
            asyncio.run(drop_postgres_database(POSTGRES_URL, scratch))
    name = f"faults: bad input fuzz ({request.param})"
    _report(name, {"fuzz_cases": sum(CASES.values()), "entry_points": len(CASES)})
    CASES.clear()


def _report(name: str, counts: dict[str, int]) -> None:
    """Into the fault suite's summary at the end of the session (tests.scaled)."""
    from tests.scaled import report

    report(name, counts)


# --- web chat -----------------------------------------------------------------------------


@FUZZ
@given(body=bodies, content_type=st.sampled_from(["application/json", "text/plain", ""]))
def test_chat_api_random_bodies(live: tuple[LiveApp, dict], body: bytes, content_type: str) -> None:
    app, _ = live
    CASES["POST /api/chat body"] += 1
    status, headers, data = app.request("POST", "/api/chat", body, {"Content-Type": content_type})
    check_answer(status, headers, data, "/api/chat")
    assert status in ((200, 400, 413) if content_type == "application/json" else (415,))


@FUZZ
@given(
    message=st.one_of(nasty_text, scalars, json_values),
    message_id=st.one_of(st.none(), nasty_text, st.integers()),
    sender=st.one_of(st.none(), nasty_text, scalars),
)
def test_chat_api_messages(
    live: tuple[LiveApp, dict], message: Any, message_id: Any, sender: Any
) -> None:
    app, _ = live
    CASES["POST /api/chat message"] += 1
    body: dict[str, Any] = {"text": message}
    if message_id is not None:
        body["id"] = message_id
    if sender is not None:
        body["sender"] = sender  # never accepted: the server chooses the sender
    status, headers, data = app.request(
        "POST", "/api/chat", as_json(body), {"Content-Type": "application/json"}
    )
    check_answer(status, headers, data, "/api/chat")
    if sender is not None:
        assert status == 400
    if status == 200:
        assert isinstance(json.loads(data)["messages"], list)


@FUZZ
@given(
    query=st.one_of(
        st.binary(max_size=300), nasty_text.map(lambda t: t.encode("utf-8", "surrogatepass"))
    )
)
def test_chat_updates_cookie_and_query(live: tuple[LiveApp, dict], query: bytes) -> None:
    app, _ = live
    CASES["POST /api/chat/updates"] += 1
    quoted = quote_from_bytes(query)
    path = "/api/chat/updates?x=" + quoted
    headers = {"Content-Type": "application/json", "Cookie": f"{cookie_name(True)}={quoted}"}
    status, answer_headers, data = app.request("POST", path, b"{}", headers)
    if len(path) > MAX_LINE:  # aiohttp's HTTP parser refuses it before the app sees it
        assert status == 400
        return
    check_answer(status, answer_headers, data, path)
    assert status in (200, 400)
    if status == 200:  # a cookie the server did not sign is no conversation
        assert json.loads(data) == {"messages": []}


def test_oversized_and_overlong(live: tuple[LiveApp, dict]) -> None:
    app, _ = live
    CASES["POST /api/chat size"] += 2
    json_type = {"Content-Type": "application/json"}
    status, _, _ = app.request("POST", "/api/chat", b"{" + b" " * 200_000 + b"}", json_type)
    assert status == 413
    body = as_json({"text": "x" * 4097})
    status, _, data = app.request("POST", "/api/chat", body, {"Content-Type": "application/json"})
    assert status == 400 and "4096" in json.loads(data)["error"]


# --- webhooks -----------------------------------------------------------------------------


@FUZZ
@given(
    body=st.one_of(
        bodies,
        st.builds(telegram_update, nasty_text, st.one_of(st.integers(-(2**63), 2**63), nasty_text)),
    ),
    secret=st.sampled_from([None, "", "wrong", TELEGRAM_SECRET, TELEGRAM_SECRET + "\x00"]),
)
def test_telegram_webhook(live: tuple[LiveApp, dict], body: Any, secret: str | None) -> None:
    app, _ = live
    CASES["POST /telegram/webhook"] += 1
    data = body if isinstance(body, bytes) else as_json(body)
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = quote(secret, safe="")
    status, resp_headers, answer = app.request("POST", "/telegram/webhook", data, headers)
    check_answer(status, resp_headers, answer, "/telegram/webhook")
    if secret != TELEGRAM_SECRET:
        assert status == 403  # nothing is looked at without the secret
    else:
        assert status in (200, 400, 413)


@FUZZ
@given(
    body=st.one_of(bodies, st.builds(wa_message, json_values, st.one_of(nasty_text, scalars))),
    signed=st.sampled_from(["valid", "none", "wrong"]),
)
def test_whatsapp_webhook(live: tuple[LiveApp, dict], body: Any, signed: str) -> None:
    app = whatsapp_app(live[0])
    CASES["POST /whatsapp/webhook"] += 1
    data = body if isinstance(body, bytes) else as_json(body)
    headers = {"Content-Type": "application/json"}
    if signed != "none":
        key = WA_SECRET.encode() if signed == "valid" else b"wrong"
        digest = hmac.new(key, data, hashlib.sha256).hexdigest()
        headers["X-Hub-Signature-256"] = f"sha256={digest}"
    status, resp_headers, answer = app.request("POST", "/whatsapp/webhook", data, headers)
    check_answer(status, resp_headers, answer, "/whatsapp/webhook")
    if signed != "valid":
        assert status in (400, 401, 403)


@FUZZ
@given(
    params=st.dictionaries(
        st.sampled_from(["hub.mode", "hub.verify_token", "hub.challenge", "x"]) | nasty_text,
        st.one_of(nasty_text, st.just(WA_VERIFY), st.just("subscribe")),
        max_size=4,
    )
)
def test_whatsapp_verification(live: tuple[LiveApp, dict], params: dict[str, str]) -> None:
    app = whatsapp_app(live[0])
    CASES["GET /whatsapp/webhook"] += 1
    encoded = form_body(params).decode()
    status, headers, data = app.request("GET", "/whatsapp/webhook?" + encoded)
    check_answer(status, headers, data, "/whatsapp/webhook")
    if params.get("hub.verify_token") != WA_VERIFY:
        assert status != 200 or data == b""


# --- console ------------------------------------------------------------------------------


@FUZZ
@given(
    username=nasty_text,
    password=nasty_text,
    csrf=st.sampled_from(["page", "missing", "wrong"]),
)
def test_console_login(live: tuple[LiveApp, dict], username: str, password: str, csrf: str) -> None:
    app, _ = live
    CASES["POST /console/login"] += 1
    status, headers, page = app.request("GET", "/console/login")
    cookies = cookies_of(headers)
    token = re.search(rb'name="csrf" value="([^"]+)"', page).group(1).decode()  # type: ignore[union-attr]
    fields = {"username": username, "password": password}
    if csrf != "missing":
        fields["csrf"] = token if csrf == "page" else "wrong"
    status, headers, data = app.request(
        "POST",
        "/console/login",
        form_body(fields),
        {
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": cookie_header(cookies),
        },
    )
    check_answer(status, headers, data, "/console/login")
    assert status in (400, 401, 403, 429), status  # never logged in with a random password


@pytest.fixture(scope="module")
def console(live: tuple[LiveApp, dict]) -> tuple[dict[str, str], str]:
    return log_in(live[0])


@FUZZ
@given(data=st.data())
def test_console_forms(
    live: tuple[LiveApp, dict], console: tuple[dict[str, str], str], data: st.DataObject
) -> None:
    app, seed = live
    cookies, csrf = console
    out = ("/console/logout", "/console/login")
    route, path = draw_route(app, seed, data, "POST", lambda r: r not in out)
    fields = data.draw(
        st.dictionaries(st.sampled_from(FORM_FIELDS) | nasty_text, nasty_text, max_size=5)
    )
    token = data.draw(st.sampled_from(["session", "session", "session", "missing", "wrong"]))
    if token == "missing":
        fields.pop("csrf", None)
    else:
        fields["csrf"] = csrf if token == "session" else "wrong"
    raw = data.draw(st.booleans().map(lambda b: b and data.draw(st.binary(max_size=500))))
    body = raw or form_body(fields)
    CASES[f"POST {route}"] += 1
    status, headers, answer = app.request(
        "POST",
        path,
        body,
        {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie_header(cookies)},
    )
    check_answer(status, headers, answer, path)
    if token != "session" and not raw:
        assert status in (400, 403, 404), (status, path)  # CSRF refused (or bad input first)
    assert status != 401, "the fuzz session was lost"


@FUZZ
@given(data=st.data())
def test_console_pages(
    live: tuple[LiveApp, dict], console: tuple[dict[str, str], str], data: st.DataObject
) -> None:
    app, seed = live
    cookies, _ = console
    route, path = draw_route(app, seed, data, "GET", lambda r: "static" not in r)
    params = data.draw(
        st.dictionaries(
            st.sampled_from(QUERY_KEYS) | nasty_text,
            nasty_text | st.integers().map(str),
            max_size=4,
        )
    )
    query = form_body(params).decode()
    CASES[f"GET {route}"] += 1
    status, headers, answer = app.request(
        "GET", f"{path}?{query}", headers={"Cookie": cookie_header(cookies)}
    )
    check_answer(status, headers, answer, path)


# --- afterwards ---------------------------------------------------------------------------


def test_markup_from_workers_is_escaped_in_the_console(
    live: tuple[LiveApp, dict], console: tuple[dict[str, str], str]
) -> None:
    app, seed = live
    cookies = {"Cookie": cookie_header(console[0])}
    script = '<script>alert("pmi")</script>'
    body = as_json({"text": f"tolong {script} <img src=x onerror=alert(2)>"})
    worker = app.app[GUARD].cookies.sign("xss-worker")  # type: ignore[index]
    headers = {"Content-Type": "application/json", "Cookie": f"{cookie_name(True)}={worker}"}
    status, _, _ = app.request("POST", "/api/chat", body, headers)
    assert status == 200

    async def public_id() -> str:
        async with app.app[SESSIONMAKER]() as s:  # type: ignore[index]
            contact = await s.scalar(select(Contact).where(Contact.channel_user_id == "xss-worker"))
            return contact.public_id  # type: ignore[union-attr]

    pages = [
        "/console/search?q=" + quote("alert"),
        f"/console/conversations/{app.run(public_id())}",
        f"/console/cases/{seed['reference']}",
    ]
    for page in pages:
        status, _, html = app.request("GET", page, headers=cookies)
        assert status == 200, (page, status)
        assert b"<script>alert" not in html and b"<img src=x" not in html, page
        assert b"&lt;script&gt;alert" in html or b"&lt;img src=x" in html, page


def test_nothing_garbage_was_stored(live: tuple[LiveApp, dict]) -> None:
    app, _ = live
    assert bad_texts(app) == []
    assert app.request("GET", "/healthz")[0] == 200
