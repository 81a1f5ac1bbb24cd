"""Helpers shared by the console's HTTP tests: an app with users, login (with its TOTP
step), CSRF tokens."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pyotp
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import update

from bot.app import create_app
from bot.console.context import KEYS
from bot.keys import SESSIONMAKER
from devtools.net import free_port
from pmi import cases, messages, staff, twofactor
from pmi.db import utcnow
from pmi.missions import Missions
from pmi.models import Case, StaffUser
from pmi.settings import load_settings
from tests.support import make_settings

PASSWORD = "a long enough passphrase"
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # the test users' authenticator
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
SECRET = re.compile(r'id="totp-secret"[^>]*>([A-Z2-7]+)<')
RECOVERY = re.compile(r"<li><code>([a-z0-9]{5}-[a-z0-9]{5})</code></li>")


@asynccontextmanager
async def console_client(database_url: str) -> AsyncIterator[TestClient]:
    """The app on 127.0.0.1 with an operator, a Kuala Lumpur mission user and an admin."""
    settings = make_settings(database_url, f"http://127.0.0.1:{free_port()}", webchat=True)
    settings.app.trusted_proxies = ["127.0.0.1"]  # tests give client addresses in X-Forwarded-For
    app = create_app(settings)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        async with client.app[SESSIONMAKER]() as s, s.begin():
            await staff.create_user(s, "operator1", PASSWORD, "operator")
            await staff.create_user(s, "kl_staff", PASSWORD, "mission", "KBRI-KUALA-LUMPUR")
            await staff.create_user(s, "admin1", PASSWORD, "admin")
        for username in ("kl_staff", "admin1"):  # they must use two-factor login
            await enable_totp(client.app, username)
        yield client


async def enable_totp(app: web.Application, username: str, secret: str = TOTP_SECRET) -> list[str]:
    """Give a user an authenticator with `secret`, as enrolment would; the recovery codes."""
    async with app[SESSIONMAKER]() as s, s.begin():
        user = await staff.find_user(s, username)
        assert user is not None
        return await twofactor.enable(s, app[KEYS], user, secret, 0, utcnow())


async def fresh_code(app: web.Application, username: str, secret: str = TOTP_SECRET) -> str:
    """The current TOTP code, made usable again: tests log in faster than once per step."""
    async with app[SESSIONMAKER]() as s, s.begin():
        await s.execute(
            update(StaffUser).where(StaffUser.username == username).values(totp_last_step=None)
        )
    return pyotp.TOTP(secret).now()


async def submit_code(  # type: ignore[no-untyped-def]
    client: TestClient, code: str, step: str = "code", *, ip: str | None = None
):
    """Post a code on the second login step (after the password)."""
    page = await client.get(f"/console/login/{step}", allow_redirects=False)
    assert page.status == 200, (page.status, await page.text())
    token = CSRF.search(await page.text()).group(1)  # type: ignore[union-attr]
    return await client.post(
        f"/console/login/{step}",
        data={"csrf": token, "code": code},
        headers={"X-Forwarded-For": ip} if ip else None,
        allow_redirects=False,
    )


async def password_step(  # type: ignore[no-untyped-def]
    client: TestClient, username: str, password: str = PASSWORD, *, ip: str | None = None
):
    """Post the login form; `ip` is the client address a trusted proxy reports."""
    page = await client.get("/console/login")
    token = CSRF.search(await page.text()).group(1)  # type: ignore[union-attr]
    return await client.post(
        "/console/login",
        data={"username": username, "password": password, "csrf": token},
        headers={"X-Forwarded-For": ip} if ip else None,
        allow_redirects=False,
    )


async def login(  # type: ignore[no-untyped-def]
    client: TestClient, username: str, password: str = PASSWORD, *, ip: str | None = None
):
    """Log in to the end: the TOTP code (users with TOTP_SECRET) or, for a user who must
    have two-factor login and has none yet, the enrolment. The last response."""
    resp = await password_step(client, username, password, ip=ip)
    location = resp.headers.get("Location") if resp.status == 302 else None
    if location == "/console/login/code":
        return await submit_code(client, await fresh_code(client.app, username), ip=ip)
    if location == "/console/login/enrol":
        return (await complete_enrolment(client))[0]
    return resp


async def browser_login(page, client: TestClient, username: str) -> None:  # type: ignore[no-untyped-def]
    """Log in on the open login page of a real browser, TOTP code included (TOTP_SECRET)."""
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url("**/console/login/code")
    await page.fill("input[name=code]", await fresh_code(client.app, username))
    await page.click("button[type=submit]")
    await page.wait_for_url("**/console/")


async def complete_enrolment(client: TestClient):  # type: ignore[no-untyped-def]
    """Set up an authenticator from the enrolment page: (response, secret, recovery codes)."""
    page = await (await client.get("/console/login/enrol")).text()
    secret = SECRET.search(page).group(1)  # type: ignore[union-attr]
    token = CSRF.search(page).group(1)  # type: ignore[union-attr]
    form = {"csrf": token, "code": pyotp.TOTP(secret).now()}
    resp = await client.post("/console/login/enrol", data=form, allow_redirects=False)
    return resp, secret, RECOVERY.findall(await resp.text())


async def csrf_of(client: TestClient, path: str) -> str:
    page = await client.get(path)
    assert page.status == 200, await page.text()
    return CSRF.search(await page.text()).group(1)  # type: ignore[union-attr]


async def new_case(client: TestClient, country: str, city: str | None = None, **kw) -> Case:  # type: ignore[no-untyped-def]
    """A case filed by a web chat worker of `country`/`city` (extra fields in `kw`)."""
    missions = Missions.load(load_settings().content.missions_file)
    kw.setdefault("category", "unpaid_wages")
    async with client.app[SESSIONMAKER]() as s, s.begin():
        contact = await messages.get_or_create_contact(s, "webchat", f"w-{country}-{city}")
        return await cases.create_case(
            s,
            conversation_id=contact.public_id,
            mission=missions.route(country, city),
            country=country,
            city=city,
            language="en",
            **kw,
        )
