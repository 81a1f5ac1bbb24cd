"""The real app for the fuzz tests (test_fuzz.py), served from a thread of its own, and the
plain HTTP the tests speak to it: answers checked, cookies, the console login, routes."""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlencode

import pyotp
import pytest
from aiohttp import web
from hypothesis import strategies as st
from sqlalchemy import String, Text, select

from bot.console.context import KEYS
from bot.keys import SESSIONMAKER
from devtools.fake_telegram import FakeTelegram
from devtools.net import free_port
from pmi import messages, staff, twofactor
from pmi.cases import create_case
from pmi.db import Base, utcnow
from pmi.missions import Missions
from pmi.models import Role
from pmi.settings import load_settings
from tests.console_helpers import TOTP_SECRET
from tests.support import make_settings

T = TypeVar("T")
TELEGRAM_SECRET = "fuzz-webhook-secret"
WA_SECRET, WA_VERIFY = "fuzz-app-secret", "fuzz-verify-token"
PASSWORD = "correct horse battery staple"
BAD = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


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


def fuzz_settings(url: str, fake: FakeTelegram):  # type: ignore[no-untyped-def]
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


async def seed_app(app: web.Application) -> dict[str, str]:
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


def check_answer(status: int, headers: dict[str, str], body: bytes, path: str) -> None:
    """Below 500; an error says what was wrong (JSON with 'error' on the web chat API)."""
    assert status < 500, (status, path, body[:300])
    if status >= 400 and status not in (401, 403, 404, 405, 413, 429):
        assert body.strip(), (status, path)
        if path.startswith("/api/"):
            assert "error" in json.loads(body), body[:300]


def cookies_of(headers: dict[str, str]) -> dict[str, str]:
    found = {}
    for part in headers.get("set-cookie", "").splitlines():
        name, _, rest = part.partition("=")
        value = rest.split(";", 1)[0].strip('"')
        if name and value:  # an empty value deletes the cookie
            found[name.strip()] = value
    return found


def cookie_header(cookies: dict[str, str]) -> str:
    return "; ".join(f"{k}={v}" for k, v in cookies.items())


def log_in(live: LiveApp) -> tuple[dict[str, str], str]:
    """Log in as the admin (password, then TOTP code); the session cookies and CSRF token."""
    status, headers, body = live.request("GET", "/console/login")
    cookies = cookies_of(headers)
    csrf = re.search(rb'name="csrf" value="([^"]+)"', body).group(1).decode()  # type: ignore[union-attr]
    form = urlencode({"username": "fuzz-admin", "password": PASSWORD, "csrf": csrf}).encode()
    elsewhere = {
        "X-Forwarded-For": "192.0.2.1",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    status, headers, _ = live.request(
        "POST", "/console/login", form, {**elsewhere, "Cookie": cookie_header(cookies)}
    )
    assert status == 302 and headers["location"] == "/console/login/code", status
    cookies = {"Cookie": cookie_header(cookies_of(headers))}  # the challenge
    status, _, page = live.request("GET", "/console/login/code", headers=cookies)
    csrf = re.search(rb'name="csrf" value="([^"]+)"', page).group(1).decode()  # type: ignore[union-attr]
    form = urlencode({"code": pyotp.TOTP(TOTP_SECRET).now(), "csrf": csrf}).encode()
    status, headers, _ = live.request("POST", "/console/login/code", form, {**elsewhere, **cookies})
    assert status == 302, status
    cookies = {k: v for k, v in cookies_of(headers).items() if "session" in k}
    status, _, page = live.request("GET", "/console/", headers={"Cookie": cookie_header(cookies)})
    assert status == 200
    token = re.search(rb'name="csrf" value="([^"]+)"', page)
    assert token, "no CSRF token on the inbox page"
    return cookies, token.group(1).decode()


def routes_of(app: web.Application, method: str, prefix: str) -> list[str]:
    paths = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("formatter") or info.get("path")
        if route.method == method and path and path.startswith(prefix):
            paths.add(path)
    return sorted(paths)


def fill_route(path: str, seed: dict[str, str], app: web.Application, pick: Any) -> str:
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


def bad_texts(live: LiveApp) -> list[tuple[str, str, str]]:
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


def whatsapp_app(app: LiveApp) -> LiveApp:
    """The app, if it has a WhatsApp webhook (the test is skipped otherwise)."""
    if not routes_of(app.app, "POST", "/whatsapp"):  # type: ignore[arg-type]
        pytest.skip("no WhatsApp webhook in this app")
    return app


def draw_route(
    app: LiveApp, seed: dict[str, str], data: Any, method: str, keep: Callable[[str], bool]
) -> tuple[str, str]:
    """A console route of `method` that `keep` accepts, drawn, and a concrete path for it."""
    routes = [r for r in routes_of(app.app, method, "/console") if keep(r)]  # type: ignore[arg-type]
    route = data.draw(st.sampled_from(routes))
    path = fill_route(route, seed, app.app, lambda options: data.draw(st.sampled_from(options)))  # type: ignore[arg-type]
    return route, path
