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
import http.client
import itertools
import json
import os
import re
import secrets
import threading
from collections import Counter
from collections.abc import Awaitable, Iterator
from typing import Any, TypeVar
from urllib.parse import quote, quote_from_bytes, urlencode

import pyotp
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import String, Text, select, text
from sqlalchemy.engine import make_url

from bot.app import create_app
from bot.console.context import KEYS
from bot.keys import SESSIONMAKER
from bot.webchat import GUARD, cookie_name
from devtools.fake_telegram import FakeTelegram
from pmi import messages, staff, twofactor
from pmi.cases import create_case
from pmi.db import Base, create_engine, utcnow
from pmi.missions import Missions
from pmi.models import Contact, Role
from pmi.settings import load_settings
from tests.conftest import POSTGRES_URL, _postgres_reachable, free_port, make_settings, migrate
from tests.console_helpers import TOTP_SECRET

T = TypeVar("T")
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "default")
FUZZ = settings(
    max_examples=400 if PROFILE == "faults" else 25,
    deadline=None,
    derandomize=PROFILE != "faults",  # make test: the same examples every run
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TELEGRAM_SECRET = "fuzz-webhook-secret"
WA_SECRET, WA_VERIFY = "fuzz-app-secret", "fuzz-verify-token"
PASSWORD = "correct horse battery staple"
BAD = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
MAX_LINE = 8190  # aiohttp's limit on the request line
CASES: Counter[str] = Counter()  # fuzz cases tried, per entry point

# --- strategies ---------------------------------------------------------------------------

NASTY = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "'; DROP TABLE cases; --",
    "' OR '1'='1",
    "%' OR 1=1 --",
    "\\x00",
    "\x00",
    "a\x00b",
    "\ud800",
    "\udfff lone",
    "\u202eRTL override",
    "zero\u200bwidth\u200d\ufeff",
    "\x1b[31mred",
    "\r\n\r\nHTTP/1.1 200 OK",
    "𝕳𝖊𝖑𝖑𝖔 🇮🇩 👩🏽‍🍳",
    "ـ\u0300\u0301\u0302" * 50,
    "{{7*7}}${7*7}<%= 7*7 %>",
    "../../../../etc/passwd",
    "PMI-AAAAAA",
    "/hapus",
    "/confirm_delete",
    "x" * 5000,
]
unicode_text = st.text(
    st.characters(codec=None, categories=None, exclude_categories=()), max_size=200
)
nasty_text = st.one_of(
    st.sampled_from(NASTY),
    unicode_text,
    st.lists(st.sampled_from(NASTY) | unicode_text, max_size=4).map("".join),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    nasty_text,
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(nasty_text, inner, max_size=4),
    max_leaves=12,
)


def _json(value: Any) -> bytes:
    """JSON text; lone surrogates become \\udXXX escapes, as a hostile client may send."""
    return json.dumps(value, ensure_ascii=True, allow_nan=True).encode()


bodies = st.one_of(st.binary(max_size=3000), json_values.map(_json))

# --- the app in a thread, plain HTTP from the test ------------------------------------------


class LiveApp:
    """The real app (create_app) served on 127.0.0.1 by a loop in its own thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.port = 0
        self.app: web.Application | None = None
        self._runner: web.AppRunner | None = None

    def run(self, coro: Awaitable[T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    async def serve(self, app: web.Application) -> None:
        self.app = app
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def close(self) -> None:
        if self._runner is not None:
            self.run(self._runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        # Not closed: a SQLite call cancelled at shutdown may still be finishing in aiosqlite's
        # worker thread (it waits up to SQLite's busy timeout), and it hands its result back
        # through the loop; on a closed loop that raises in the thread. The stopped loop is
        # left to the garbage collector.

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
            headers = {k.lower(): v for k, v in resp.getheaders()}
            headers["set-cookie"] = "\n".join(resp.headers.get_all("Set-Cookie") or [])
            return resp.status, headers, data
        finally:
            conn.close()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """The app with every channel on, a staff admin and one case, on each backend."""
    live = LiveApp()
    scratch = None
    try:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'fuzz.db'}"
        else:
            if not _postgres_reachable():
                pytest.skip("PostgreSQL not reachable")
            scratch = f"pmi_fuzz_{secrets.token_hex(4)}"
            live.run(_create_database(scratch))
            url = make_url(POSTGRES_URL).set(database=scratch).render_as_string(False)
        live.run(_migrate(url))
        fake = FakeTelegram()
        live.run(fake.start())
        live.run(live.serve(create_app(_settings(url, fake))))
        yield live, live.run(_seed(live.app))
        live.run(fake.stop())
    finally:
        live.close()
        if scratch:
            asyncio.run(_drop_database(scratch))
    name = f"faults: bad input fuzz ({request.param})"
    _report(name, {"fuzz_cases": sum(CASES.values()), "entry_points": len(CASES)})
    CASES.clear()


def _report(name: str, counts: dict[str, int]) -> None:
    """Into the fault suite's summary at the end of the session (tests.scaled)."""
    from tests.scaled import report

    report(name, counts)


def _settings(url: str, fake: FakeTelegram):  # type: ignore[no-untyped-def]
    settings = make_settings(url, f"http://127.0.0.1:{free_port()}")
    channels = settings.channels
    telegram = channels.telegram.model_copy(
        update={"token": fake.token, "base_url": fake.base_url, "webhook_secret": TELEGRAM_SECRET}
    )
    unlimited = 10**9  # the fuzzer is one address sending thousands of messages
    webchat = channels.webchat.model_copy(
        update={
            "sessions_per_ip_hour": unlimited,
            "messages_per_ip_minute": unlimited,
            "messages_per_minute": unlimited,
        }
    )
    update: dict[str, Any] = {"telegram": telegram, "webchat": webchat}
    if hasattr(channels, "whatsapp"):  # the WhatsApp adapter
        update["whatsapp"] = channels.whatsapp.model_copy(
            update={
                "phone_number_id": "1234567890",
                "token": "fuzz-token",
                "app_secret": WA_SECRET,
                "verify_token": WA_VERIFY,
                "graph_url": f"http://127.0.0.1:{free_port()}",
            }
        )
    # Trusted as a proxy: the admin logs in "from elsewhere" than the login fuzzing (throttled).
    app = settings.app.model_copy(
        update={"public_url": "https://pmi.example", "trusted_proxies": ["127.0.0.1"]}
    )
    return settings.model_copy(update={"channels": channels.model_copy(update=update), "app": app})


async def _create_database(name: str) -> None:
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()


async def _drop_database(name: str) -> None:
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await admin.dispose()


async def _migrate(url: str) -> None:
    engine = create_engine(url)
    await migrate(engine)
    await engine.dispose()


async def _seed(app: web.Application) -> dict[str, str]:
    """An admin, a second user (a target for user forms), a worker with a case."""
    missions = Missions.load(load_settings().content.missions_file)
    async with app[SESSIONMAKER]() as s, s.begin():
        admin = await staff.create_user(s, "fuzz-admin", PASSWORD, Role.ADMIN)
        await twofactor.enable(s, app[KEYS], admin, TOTP_SECRET, 0, utcnow())
        other = await staff.create_user(s, "fuzz-other", PASSWORD, Role.OPERATOR)
        contact = await messages.get_or_create_contact(s, "webchat", "fuzz-worker")
        await messages.store_inbound(s, contact, "webchat", "seed-1", "<b>halo</b>")
        case = await create_case(
            s,
            conversation_id=contact.public_id,
            category="unpaid_wages",
            mission=missions.default,
            description="<script>alert('case')</script>",
        )
        return {
            "reference": case.reference,
            "public_id": contact.public_id,
            "other_user": str(other.id),
        }


# --- helpers ------------------------------------------------------------------------------


def _check(status: int, headers: dict[str, str], body: bytes, path: str) -> None:
    """Below 500; an error says what was wrong (JSON with 'error' on the web chat API)."""
    assert status < 500, (status, path, body[:300])
    if status >= 400 and status not in (401, 403, 404, 405, 413, 429):
        assert body.strip(), (status, path)
        if path.startswith("/api/"):
            assert "error" in json.loads(body), body[:300]


def _cookies(headers: dict[str, str]) -> dict[str, str]:
    found = {}
    for part in headers.get("set-cookie", "").splitlines():
        name, _, rest = part.partition("=")
        value = rest.split(";", 1)[0].strip('"')
        if name and value:  # an empty value deletes the cookie
            found[name.strip()] = value
    return found


def _cookie_header(cookies: dict[str, str]) -> str:
    return "; ".join(f"{k}={v}" for k, v in cookies.items())


def _login(live: LiveApp) -> tuple[dict[str, str], str]:
    """Log in as the admin (password, then TOTP code); the session cookies and CSRF token."""
    status, headers, body = live.request("GET", "/console/login")
    cookies = _cookies(headers)
    csrf = re.search(rb'name="csrf" value="([^"]+)"', body).group(1).decode()  # type: ignore[union-attr]
    form = urlencode({"username": "fuzz-admin", "password": PASSWORD, "csrf": csrf}).encode()
    elsewhere = {
        "X-Forwarded-For": "192.0.2.1",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    status, headers, _ = live.request(
        "POST", "/console/login", form, {**elsewhere, "Cookie": _cookie_header(cookies)}
    )
    assert status == 302 and headers["location"] == "/console/login/code", status
    cookies = {"Cookie": _cookie_header(_cookies(headers))}  # the challenge
    status, _, page = live.request("GET", "/console/login/code", headers=cookies)
    csrf = re.search(rb'name="csrf" value="([^"]+)"', page).group(1).decode()  # type: ignore[union-attr]
    form = urlencode({"code": pyotp.TOTP(TOTP_SECRET).now(), "csrf": csrf}).encode()
    status, headers, _ = live.request("POST", "/console/login/code", form, {**elsewhere, **cookies})
    assert status == 302, status
    cookies = {k: v for k, v in _cookies(headers).items() if "session" in k}
    status, _, page = live.request("GET", "/console/", headers={"Cookie": _cookie_header(cookies)})
    assert status == 200
    token = re.search(rb'name="csrf" value="([^"]+)"', page)
    assert token, "no CSRF token on the inbox page"
    return cookies, token.group(1).decode()


def _routes(app: web.Application, method: str, prefix: str) -> list[str]:
    paths = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("formatter") or info.get("path")
        if route.method == method and path and path.startswith(prefix):
            paths.add(path)
    return sorted(paths)


def _fill(path: str, seed: dict[str, str], app: web.Application, pick: Any) -> str:
    """A concrete URL for a route template, choosing among its alternatives."""
    patterns = {}
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        if info.get("formatter") == path:
            patterns = {
                m.group(1): m.group(2)
                for m in re.finditer(r"\{(\w+):([^}]+)\}", route.resource.canonical)
            }

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in patterns and re.fullmatch(r"[\w|]+", patterns[name]):
            return pick(patterns[name].split("|"))
        known = {"reference": seed["reference"], "public_id": seed["public_id"]}
        return known.get(name) or pick([seed["other_user"], "999999", "x"])

    return re.sub(r"\{(\w+)\}", value, path)


def _sweep(live: LiveApp) -> list[tuple[str, str, str]]:
    """Every stored text with a control character or a surrogate: (table, column, value)."""

    async def scan() -> list[tuple[str, str, str]]:
        found = []
        async with live.app[SESSIONMAKER]() as s:  # type: ignore[index]
            for table in Base.metadata.sorted_tables:
                columns = [c for c in table.columns if isinstance(c.type, String | Text)]
                if not columns:
                    continue
                for row in await s.execute(select(*columns)):
                    for column, value in zip(columns, row, strict=True):
                        if isinstance(value, str) and BAD.search(value):
                            found.append((table.name, column.name, value[:80]))
        return found

    return live.run(scan())


# --- web chat -----------------------------------------------------------------------------


@FUZZ
@given(body=bodies, content_type=st.sampled_from(["application/json", "text/plain", ""]))
def test_chat_api_random_bodies(live: tuple[LiveApp, dict], body: bytes, content_type: str) -> None:
    app, _ = live
    CASES["POST /api/chat body"] += 1
    status, headers, data = app.request("POST", "/api/chat", body, {"Content-Type": content_type})
    _check(status, headers, data, "/api/chat")
    assert status in ((200, 400, 413) if content_type == "application/json" else (415,))


counter = itertools.count()


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
        "POST", "/api/chat", _json(body), {"Content-Type": "application/json"}
    )
    _check(status, headers, data, "/api/chat")
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
    _check(status, answer_headers, data, path)
    assert status in (200, 400)
    if status == 200:  # a cookie the server did not sign is no conversation
        assert json.loads(data) == {"messages": []}


def test_oversized_and_overlong(live: tuple[LiveApp, dict]) -> None:
    app, _ = live
    CASES["POST /api/chat size"] += 2
    json_type = {"Content-Type": "application/json"}
    status, _, _ = app.request("POST", "/api/chat", b"{" + b" " * 200_000 + b"}", json_type)
    assert status == 413
    body = _json({"text": "x" * 4097})
    status, _, data = app.request("POST", "/api/chat", body, {"Content-Type": "application/json"})
    assert status == 400 and "4096" in json.loads(data)["error"]


# --- webhooks -----------------------------------------------------------------------------

update_ids = itertools.count(10_000)


def _update(text_value: Any, chat_id: Any) -> dict[str, Any]:
    return {
        "update_id": next(update_ids),
        "message": {
            "message_id": 1,
            "date": 0,
            "chat": {"id": chat_id, "type": "private"},
            "from": {"id": 5, "is_bot": False, "first_name": text_value},
            "text": text_value,
        },
    }


@FUZZ
@given(
    body=st.one_of(
        bodies,
        st.builds(_update, nasty_text, st.one_of(st.integers(-(2**63), 2**63), nasty_text)),
    ),
    secret=st.sampled_from([None, "", "wrong", TELEGRAM_SECRET, TELEGRAM_SECRET + "\x00"]),
)
def test_telegram_webhook(live: tuple[LiveApp, dict], body: Any, secret: str | None) -> None:
    app, _ = live
    CASES["POST /telegram/webhook"] += 1
    data = body if isinstance(body, bytes) else _json(body)
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = quote(secret, safe="")
    status, resp_headers, answer = app.request("POST", "/telegram/webhook", data, headers)
    _check(status, resp_headers, answer, "/telegram/webhook")
    if secret != TELEGRAM_SECRET:
        assert status == 403  # nothing is looked at without the secret
    else:
        assert status in (200, 400, 413)


def _whatsapp(live: tuple[LiveApp, dict]) -> LiveApp:
    app, _ = live
    if not _routes(app.app, "POST", "/whatsapp"):  # type: ignore[arg-type]
        pytest.skip("no WhatsApp webhook in this app")
    return app


def _wa_message(text_value: Any, sender: Any) -> dict[str, Any]:
    message = {"from": sender, "id": f"wamid.{next(update_ids)}", "timestamp": "0"}
    message.update({"type": "text", "text": {"body": text_value}})
    value = {
        "messaging_product": "whatsapp",
        "contacts": [{"wa_id": sender}],
        "messages": [message],
    }
    return {"object": "whatsapp_business_account", "entry": [{"changes": [{"value": value}]}]}


@FUZZ
@given(
    body=st.one_of(bodies, st.builds(_wa_message, json_values, st.one_of(nasty_text, scalars))),
    signed=st.sampled_from(["valid", "none", "wrong"]),
)
def test_whatsapp_webhook(live: tuple[LiveApp, dict], body: Any, signed: str) -> None:
    app = _whatsapp(live)
    CASES["POST /whatsapp/webhook"] += 1
    data = body if isinstance(body, bytes) else _json(body)
    headers = {"Content-Type": "application/json"}
    if signed != "none":
        key = WA_SECRET.encode() if signed == "valid" else b"wrong"
        digest = hmac.new(key, data, hashlib.sha256).hexdigest()
        headers["X-Hub-Signature-256"] = f"sha256={digest}"
    status, resp_headers, answer = app.request("POST", "/whatsapp/webhook", data, headers)
    _check(status, resp_headers, answer, "/whatsapp/webhook")
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
    app = _whatsapp(live)
    CASES["GET /whatsapp/webhook"] += 1
    encoded = "&".join(
        f"{quote(k.encode('utf-8', 'surrogatepass'))}={quote(v.encode('utf-8', 'surrogatepass'))}"
        for k, v in params.items()
    )
    status, headers, data = app.request("GET", "/whatsapp/webhook?" + encoded)
    _check(status, headers, data, "/whatsapp/webhook")
    if params.get("hub.verify_token") != WA_VERIFY:
        assert status != 200 or data == b""


# --- console ------------------------------------------------------------------------------


def _form(fields: dict[str, str]) -> bytes:
    return "&".join(
        f"{quote(k.encode('utf-8', 'surrogatepass'))}={quote(v.encode('utf-8', 'surrogatepass'))}"
        for k, v in fields.items()
    ).encode()


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
    cookies = _cookies(headers)
    token = re.search(rb'name="csrf" value="([^"]+)"', page).group(1).decode()  # type: ignore[union-attr]
    fields = {"username": username, "password": password}
    if csrf != "missing":
        fields["csrf"] = token if csrf == "page" else "wrong"
    status, headers, data = app.request(
        "POST",
        "/console/login",
        _form(fields),
        {
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": _cookie_header(cookies),
        },
    )
    _check(status, headers, data, "/console/login")
    assert status in (400, 401, 403, 429), status  # never logged in with a random password


FIELDS = "text status csrf username password role mission intent q country language title body"
FIELDS += " reason confirm action next active"


@pytest.fixture(scope="module")
def console(live: tuple[LiveApp, dict]) -> tuple[dict[str, str], str]:
    return _login(live[0])


@FUZZ
@given(data=st.data())
def test_console_forms(
    live: tuple[LiveApp, dict], console: tuple[dict[str, str], str], data: st.DataObject
) -> None:
    app, seed = live
    cookies, csrf = console
    routes = [
        r
        for r in _routes(app.app, "POST", "/console")
        if r not in ("/console/logout", "/console/login")
    ]  # type: ignore[arg-type]
    route = data.draw(st.sampled_from(routes))
    path = _fill(route, seed, app.app, lambda options: data.draw(st.sampled_from(options)))  # type: ignore[arg-type]
    fields = data.draw(
        st.dictionaries(st.sampled_from(FIELDS.split()) | nasty_text, nasty_text, max_size=5)
    )
    token = data.draw(st.sampled_from(["session", "session", "session", "missing", "wrong"]))
    if token == "missing":
        fields.pop("csrf", None)
    else:
        fields["csrf"] = csrf if token == "session" else "wrong"
    raw = data.draw(st.booleans().map(lambda b: b and data.draw(st.binary(max_size=500))))
    body = raw or _form(fields)
    CASES[f"POST {route}"] += 1
    status, headers, answer = app.request(
        "POST",
        path,
        body,
        {"Content-Type": "application/x-www-form-urlencoded", "Cookie": _cookie_header(cookies)},
    )
    _check(status, headers, answer, path)
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
    routes = [r for r in _routes(app.app, "GET", "/console") if "static" not in r]  # type: ignore[arg-type]
    route = data.draw(st.sampled_from(routes))
    path = _fill(route, seed, app.app, lambda options: data.draw(st.sampled_from(options)))  # type: ignore[arg-type]
    params = data.draw(
        st.dictionaries(
            st.sampled_from(
                [
                    "q",
                    "status",
                    "priority",
                    "mission",
                    "category",
                    "country",
                    "from",
                    "to",
                    "after",
                    "channel",
                    "language",
                    "intent",
                    "low",
                    "page",
                ]
            )
            | nasty_text,
            nasty_text | st.integers().map(str),
            max_size=4,
        )
    )
    query = _form(params).decode()
    CASES[f"GET {route}"] += 1
    status, headers, answer = app.request(
        "GET", f"{path}?{query}", headers={"Cookie": _cookie_header(cookies)}
    )
    _check(status, headers, answer, path)


# --- afterwards ---------------------------------------------------------------------------


def test_markup_from_workers_is_escaped_in_the_console(
    live: tuple[LiveApp, dict], console: tuple[dict[str, str], str]
) -> None:
    app, seed = live
    cookies = {"Cookie": _cookie_header(console[0])}
    script = '<script>alert("pmi")</script>'
    body = _json({"text": f"tolong {script} <img src=x onerror=alert(2)>"})
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
    assert _sweep(app) == []
    assert app.request("GET", "/healthz")[0] == 200
