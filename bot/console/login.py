"""Console login: the password, then a second factor, then a new session; and logout.

Admins and mission staff (and operators who chose it) give a TOTP code or a recovery code
after the password; at their first login they set up an authenticator app instead. Every
try is counted by `pmi.login_throttle` before it is checked; the password is checked off
the event loop (`bot.console.passwords`) and outside any database transaction.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import aiohttp_jinja2
from aiohttp import web
from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncSession

from bot.console.auth import (
    STAFF_KEY,
    check_csrf,
    clear_cookie,
    client_address,
    cookie_name,
    new_login_csrf,
    set_cookie,
)
from bot.console.context import KEYS, PASSWORDS
from bot.keys import SESSIONMAKER, SETTINGS
from pmi import login_throttle, staff, twofactor
from pmi.db import utcnow
from pmi.login_models import StaffLoginChallenge
from pmi.login_throttle import Key, Policy
from pmi.models import StaffUser

LOGIN_CSRF = "pmi_login_csrf"
CHALLENGE = "pmi_login_2fa"
SESSION = "pmi_session"
BAD_LOGIN = "Nama pengguna atau kata sandi salah."
WRONG_CODE = "Kode salah atau sudah dipakai."
START_AGAIN = "Waktu habis atau terlalu banyak kode salah. Masuk lagi."


class _Throttled(Exception):
    """A key is waiting out its delay: the try is refused (and its transaction undone)."""


def _redirect(location: str) -> web.Response:
    """A 302 to return (with cookies set on it); aiohttp wants HTTPFound raised, not returned."""
    return web.Response(status=302, headers={"Location": location})


def _policy(request: web.Request) -> Policy:
    return Policy.from_settings(request.app[SETTINGS].console)


def _keys(request: web.Request, username: str) -> tuple[Key, Key]:
    account = request.app[KEYS].account_hash(username)
    return login_throttle.keys_for(_policy(request), client_address(request), account)


async def _charge(s: AsyncSession, request: web.Request, keys: tuple[Key, Key]) -> None:
    for key in keys:
        if not await login_throttle.charge(s, key, _policy(request), utcnow()):
            raise _Throttled


async def _refused(
    request: web.Request, keys: tuple[Key, Key], render: Callable[[int], Awaitable[web.Response]]
) -> web.Response:
    """Say how long to wait (429); audited once per key per window."""
    now = utcnow()
    async with request.app[SESSIONMAKER]() as s, s.begin():
        wait = await login_throttle.wait_left(s, keys, now)
        if await login_throttle.audit_due(s, keys, _policy(request), now):
            await staff.audit(s, None, "login_throttled", None, {"ip": client_address(request)})
    seconds = max(1, math.ceil(wait.total_seconds()))
    response = await render(seconds)
    response.headers["Retry-After"] = str(seconds)
    return response


async def _failed(
    request: web.Request, keys: tuple[Key, Key], user: StaffUser | None, step: str
) -> None:
    """Audit a failure (once per key per window; never the name typed) and prune old keys."""
    now = utcnow()
    async with request.app[SESSIONMAKER]() as s, s.begin():
        if await login_throttle.audit_due(s, keys, _policy(request), now):
            account = user.username if user is not None else None  # an account that exists
            detail = {"ip": client_address(request), "step": step}
            await staff.audit(s, None, "login_failed", account, detail)
        await login_throttle.prune(s, _policy(request), now)


async def _render_login(
    request: web.Request, error: str | None = None, status: int = 200, wait: int = 0
) -> web.Response:
    token = new_login_csrf()
    context = {"csrf": token, "error": error, "wait": wait}
    response = aiohttp_jinja2.render_template("login.html", request, context, status=status)
    set_cookie(response, request, LOGIN_CSRF, token)
    return response


async def login_page(request: web.Request) -> web.Response:
    """Show the login form with a fresh double-submit CSRF token."""
    return await _render_login(request)


async def login(request: web.Request) -> web.StreamResponse:
    """Check the password (throttled, off the event loop); go on to the second factor."""
    form = await request.post()
    check_csrf(request.cookies.get(cookie_name(request, LOGIN_CSRF)), form.get("csrf"))
    username = str(form.get("username", ""))[:64]
    keys = _keys(request, username)
    checker = request.app[PASSWORDS]
    async with checker.turn:
        try:
            async with request.app[SESSIONMAKER]() as s, s.begin():
                await _charge(s, request, keys)
                user = await staff.find_user(s, username)
        except _Throttled:
            return await _refused(request, keys, lambda w: _render_login(request, None, 429, w))
        ok, new_hash = await checker.verify(
            user.password_hash if user is not None else None, str(form.get("password", ""))
        )
        if not ok or user is None or not user.active:
            await _failed(request, keys, user, "password")
            return await _render_login(request, BAD_LOGIN, 401)
        return await _password_ok(request, keys, user.id, new_hash)


async def _password_ok(
    request: web.Request, keys: tuple[Key, Key], user_id: int, new_hash: str | None
) -> web.StreamResponse:
    """A session for a user without a second factor; otherwise a challenge for it."""
    console = request.app[SETTINGS].console
    forget = timedelta(minutes=max(console.login_code_minutes, console.login_enrol_minutes))
    async with request.app[SESSIONMAKER]() as s, s.begin():
        user = await s.get(StaffUser, user_id)
        if user is None or not user.active:
            raise web.HTTPFound("/console/login")
        if new_hash is not None:
            user.password_hash = new_hash
        await login_throttle.give_back(s, keys)
        second_factor = twofactor.enabled(user) or twofactor.required(user)
        if second_factor:
            token, _ = await twofactor.open_challenge(s, request.app[KEYS], user, utcnow(), forget)
        else:
            token = await _open_session(request, s, user, keys, None)
    if not second_factor:
        return _signed_in(request, _redirect("/console/"), token)
    step = "code" if twofactor.enabled(user) else "enrol"
    response = _redirect(f"/console/login/{step}")
    set_cookie(response, request, CHALLENGE, token)
    clear_cookie(response, request, LOGIN_CSRF)
    return response


async def _open_session(
    request: web.Request, s: AsyncSession, user: StaffUser, keys: tuple[Key, Key], how: str | None
) -> str:
    """A new session (the old one of this browser ends); the login is audited."""
    await login_throttle.clear(s, keys[1])
    old = request.cookies.get(cookie_name(request, SESSION))
    if old:
        await staff.close_session(s, old)
    token, _ = await staff.open_session(s, user)
    await staff.audit(s, user, "login", None, {"second_factor": how} if how else None)
    return token


def _signed_in(
    request: web.Request, response: web.StreamResponse, token: str
) -> web.StreamResponse:
    set_cookie(response, request, SESSION, token)
    clear_cookie(response, request, LOGIN_CSRF)
    clear_cookie(response, request, CHALLENGE)
    return response


async def _challenge(
    request: web.Request, s: AsyncSession
) -> tuple[StaffLoginChallenge, StaffUser] | None:
    token = request.cookies.get(cookie_name(request, CHALLENGE))
    if not token:
        return None
    console = request.app[SETTINGS].console
    return await twofactor.load_challenge(
        s,
        token,
        utcnow(),
        timedelta(minutes=console.login_code_minutes),
        timedelta(minutes=console.login_enrol_minutes),
    )


def _render_step(
    request: web.Request,
    challenge: StaffLoginChallenge,
    user: StaffUser,
    error: str | None = None,
    status: int = 200,
    wait: int = 0,
) -> web.Response:
    """The code form, or the set-up page (QR code and secret) for a user without one."""
    context: dict = {"csrf": challenge.csrf_token, "error": error, "wait": wait}
    if twofactor.enabled(user):
        return aiohttp_jinja2.render_template("login_code.html", request, context, status=status)
    context.update(enrol_context(request, challenge, user), action="/console/login/enrol")
    return aiohttp_jinja2.render_template("login_enrol.html", request, context, status=status)


def enrol_context(
    request: web.Request, challenge: StaffLoginChallenge, user: StaffUser
) -> dict[str, object]:
    """The secret on offer, as text and as a QR code (inline SVG)."""
    secret = twofactor.enrol_secret(request.app[KEYS], challenge) or ""
    uri = twofactor.provisioning_uri(secret, user.username)
    return {"secret": secret, "qr": Markup(twofactor.qr_svg(uri))}  # noqa: S704 (our own SVG)


async def step_page(request: web.Request) -> web.StreamResponse:
    """The second step: the code form, or setting up the authenticator app."""
    async with request.app[SESSIONMAKER]() as s, s.begin():
        loaded = await _challenge(request, s)
    if loaded is None:
        raise web.HTTPFound("/console/login")
    challenge, user = loaded
    step = "code" if twofactor.enabled(user) else "enrol"
    if not request.path.endswith(step):
        raise web.HTTPFound(f"/console/login/{step}")
    return _render_step(request, challenge, user)


async def step_submit(request: web.Request) -> web.StreamResponse:
    """Check a TOTP or recovery code, or confirm a new authenticator; then the session."""
    form = await request.post()
    code = str(form.get("code", ""))[:64]
    now = utcnow()
    keys, ids = None, (0, 0)
    try:
        async with request.app[SESSIONMAKER]() as s, s.begin():
            loaded = await _challenge(request, s)
            if loaded is None:
                return await _render_login(request, START_AGAIN, 401)
            challenge, user = loaded
            check_csrf(challenge.csrf_token, form.get("csrf"))
            if request.path.endswith("enrol") == twofactor.enabled(user):
                raise web.HTTPFound("/console/login")  # the step changed (e.g. another tab)
            keys, ids = _keys(request, user.username), (challenge.id, user.id)
            await _charge(s, request, keys)
            outcome = await _check_step(request, s, challenge, user, code, now, keys)
    except _Throttled:
        assert keys is not None  # the rollback expired the objects: reloaded by id
        return await _refused(request, keys, lambda w: _wait_step(request, *ids, w))
    if outcome is None:
        await _failed(request, keys, user, "enrol" if challenge.enrol_secret else "code")
        if challenge.tries >= twofactor.MAX_TRIES:
            return await _render_login(request, START_AGAIN, 401)
        return _render_step(request, challenge, user, WRONG_CODE, 401)
    token, codes = outcome
    if codes is None:
        return _signed_in(request, _redirect("/console/"), token)
    page = aiohttp_jinja2.render_template("recovery_codes.html", request, {"codes": codes})
    return _signed_in(request, page, token)


async def _check_step(
    request: web.Request,
    s: AsyncSession,
    challenge: StaffLoginChallenge,
    user: StaffUser,
    code: str,
    now: datetime,
    keys: tuple[Key, Key],
) -> tuple[str, list[str] | None] | None:
    """(session token, new recovery codes or None) when the code is good; None when not."""
    codes = None
    if twofactor.enabled(user):
        how = await twofactor.check_code(s, request.app[KEYS], user, code, now)
    else:
        codes = await twofactor.confirm_enrolment(s, request.app[KEYS], challenge, user, code, now)
        how = "totp" if codes is not None else None
        if codes is not None:
            await staff.audit(s, user, "totp_enrolled")
    if how is None:
        await twofactor.wrong_code(s, challenge)
        return None
    await login_throttle.give_back(s, keys)
    await twofactor.close_challenge(s, challenge)
    return await _open_session(request, s, user, keys, how), codes


async def _wait_step(
    request: web.Request, challenge_id: int, user_id: int, wait: int
) -> web.Response:
    async with request.app[SESSIONMAKER]() as s:
        challenge = await s.get(StaffLoginChallenge, challenge_id)
        user = await s.get(StaffUser, user_id)
    if challenge is None or user is None:
        return await _render_login(request, None, 429, wait)
    return _render_step(request, challenge, user, None, 429, wait)


async def logout(request: web.Request) -> web.StreamResponse:
    """End the session and go back to the login page."""
    token = request.cookies.get(cookie_name(request, SESSION), "")
    async with request.app[SESSIONMAKER]() as s, s.begin():
        await staff.close_session(s, token)
        await staff.audit(s, request[STAFF_KEY], "logout")
    response = web.HTTPFound("/console/login")
    clear_cookie(response, request, SESSION)
    raise response
