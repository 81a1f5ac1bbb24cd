"""A user's own account page: two-factor status, and turning it on (operators may)."""

from __future__ import annotations

from datetime import timedelta

import aiohttp_jinja2
from aiohttp import web

from bot.console.auth import STAFF_KEY
from bot.console.context import KEYS
from bot.console.login import WRONG_CODE, enrol_context
from bot.keys import SESSIONMAKER, SETTINGS
from pmi import staff, twofactor
from pmi.db import utcnow


def _ttl(request: web.Request) -> timedelta:
    return timedelta(minutes=request.app[SETTINGS].console.login_enrol_minutes)


async def account_page(request: web.Request) -> web.Response:
    """Two-factor status; without it, a new secret to set up (as at a first login)."""
    user = request[STAFF_KEY]
    context: dict = {"enabled": twofactor.enabled(user)}
    async with request.app[SESSIONMAKER]() as s, s.begin():
        if twofactor.enabled(user):
            context["codes_left"] = await twofactor.recovery_codes_left(s, user)
        else:
            token, challenge = await twofactor.open_challenge(
                s, request.app[KEYS], user, utcnow(), _ttl(request)
            )
            context.update(enrol_context(request, challenge, user), challenge=token)
    return aiohttp_jinja2.render_template("account.html", request, context)


async def enable_totp(request: web.Request) -> web.StreamResponse:
    """Confirm the authenticator with a code from it; show the recovery codes once."""
    user = request[STAFF_KEY]
    form = await request.post()
    token = str(form.get("challenge", ""))
    now = utcnow()
    async with request.app[SESSIONMAKER]() as s, s.begin():
        loaded = await twofactor.load_challenge(s, token, now, _ttl(request), _ttl(request))
        if loaded is None or loaded[0].user_id != user.id:
            raise web.HTTPSeeOther("/console/account")  # expired: a new secret is shown
        challenge, fresh = loaded
        code = str(form.get("code", ""))[:64]
        codes = await twofactor.confirm_enrolment(s, request.app[KEYS], challenge, fresh, code, now)
        if codes is None:
            used_up = await twofactor.wrong_code(s, challenge)
        else:
            await twofactor.close_challenge(s, challenge)
            await staff.audit(s, user, "totp_enrolled")
    if codes is not None:
        return aiohttp_jinja2.render_template("recovery_codes.html", request, {"codes": codes})
    if used_up:
        raise web.HTTPSeeOther("/console/account")
    context = {"enabled": False, "error": WRONG_CODE, "challenge": token}
    context.update(enrol_context(request, challenge, fresh))
    return aiohttp_jinja2.render_template("account.html", request, context, status=400)
