"""Console sessions: cookies, CSRF and the login-required middleware."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from datetime import timedelta

from aiohttp import web

from bot.keys import SESSIONMAKER, SETTINGS
from bot.webchat_guard import client_ip, limit_key, parse_networks
from pmi import staff
from pmi.models import StaffSession, StaffUser

PUBLIC = {"/console/login", "/console/login/code", "/console/login/enrol"}
# Background polls: they need a session but do not keep it alive (the idle timeout runs on).
PASSIVE = {"/console/alerts.json"}
STAFF_KEY = web.RequestKey("staff", StaffUser)
SESSION_KEY = web.RequestKey("staff_session", StaffSession)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def secure(request: web.Request) -> bool:
    """Behind HTTPS (public URL or the request itself) cookies get Secure and `__Host-`."""
    public = request.app[SETTINGS].app.public_url or ""
    return public.startswith("https://") or request.secure


def cookie_name(request: web.Request, name: str) -> str:
    return f"__Host-{name}" if secure(request) else name


def set_cookie(response: web.StreamResponse, request: web.Request, name: str, value: str) -> None:
    response.set_cookie(
        cookie_name(request, name),
        value,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=secure(request),
    )


def clear_cookie(response: web.StreamResponse, request: web.Request, name: str) -> None:
    response.del_cookie(cookie_name(request, name), path="/")


def check_csrf(expected: str | None, given: object) -> None:
    """Refuse unless both tokens are there, not empty, and equal (in constant time)."""
    if (
        not expected
        or not isinstance(given, str)
        or not given
        or not hmac.compare_digest(expected.encode(), given.encode("utf-8", "surrogatepass"))
    ):
        raise web.HTTPForbidden(text="invalid or missing CSRF token; reload the page")


def client_address(request: web.Request) -> str:
    """What login throttling counts by: the client's address (or its IPv6 /64)."""
    trusted = parse_networks(request.app[SETTINGS].app.trusted_proxies)
    return limit_key(client_ip(request, trusted)) or "unknown"


def new_login_csrf() -> str:
    return secrets.token_urlsafe(32)


@web.middleware
async def console_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Require a live session on /console; check CSRF on every state-changing request."""
    if not request.path.startswith("/console") or request.path.startswith("/console/static"):
        return await handler(request)
    if request.path not in PUBLIC:
        settings = request.app[SETTINGS].console
        token = request.cookies.get(cookie_name(request, "pmi_session"))
        loaded = None
        if token:
            async with request.app[SESSIONMAKER]() as s, s.begin():
                loaded = await staff.load_session(
                    s,
                    token,
                    timedelta(minutes=settings.session_idle_minutes),
                    timedelta(hours=settings.session_max_hours),
                    touch=request.path not in PASSIVE,
                )
        if loaded is None:
            if request.method == "GET" and not request.path.endswith(".json"):
                raise web.HTTPFound("/console/login")
            raise web.HTTPUnauthorized(text="login required")
        request[SESSION_KEY], request[STAFF_KEY] = loaded
        if request.method not in ("GET", "HEAD"):
            form = await request.post()
            check_csrf(loaded[0].csrf_token, form.get("csrf"))
    response = await handler(request)
    response.headers.update(
        {
            "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
            "X-Frame-Options": "DENY",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        }
    )
    return response
