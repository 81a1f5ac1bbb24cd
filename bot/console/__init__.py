"""Staff console under /console: server-rendered pages for embassy staff and operators."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from bot.console import (
    account,
    announcements,
    audit,
    casework,
    corrections,
    dashboard,
    export,
    login,
    media,
    users,
    views,
)
from bot.console.auth import SESSION_KEY, STAFF_KEY, console_middleware
from bot.console.context import CLOCK, CONTENT, KEYS, PASSWORDS, ConsoleContent
from bot.console.passwords import PasswordChecker
from bot.keys import SETTINGS
from pmi.canned import CannedReplies
from pmi.console_keys import load_console_keys
from pmi.corrections import load_intents
from pmi.deadlines import Clock
from pmi.knowledge import Replies
from pmi.labels import CaseLabels
from pmi.missions import Missions
from pmi.outcomes import Outcomes
from pmi.referrals import ReferralBodies
from pmi.settings import Settings

HERE = Path(__file__).parent


async def _context(request: web.Request) -> dict:
    user = request.get(STAFF_KEY)
    session = request.get(SESSION_KEY)
    return {
        "staff": user,
        "csrf": session.csrf_token if session else None,
        "labels": request.app[CONTENT].labels,
        "missions": request.app[CONTENT].missions,
        "outcomes": request.app[CONTENT].outcomes,
        "referrals": request.app[CONTENT].referrals,
    }


async def _to_inbox(_: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/console/")


async def _resources(app: web.Application) -> AsyncIterator[None]:
    """The console key (CONSOLE_SECRET_KEY or its file) and the password-check threads."""
    app[KEYS] = load_console_keys(app[SETTINGS].console)
    app[PASSWORDS] = PasswordChecker()
    yield
    app[PASSWORDS].close()


def setup_console(app: web.Application, settings: Settings) -> None:
    content = settings.content
    app[CONTENT] = ConsoleContent(
        Missions.load(content.missions_file),
        CaseLabels.load(content.case_labels_file),
        Replies.load(content.replies_file),
        load_intents(content.domain_dir),
        Outcomes.load(content.case_outcomes_file),
        ReferralBodies.load(content.referral_bodies_file),
        CannedReplies.load(content.canned_replies_file, settings.language.fallbacks),
    )
    # Before aiohttp_jinja2's middleware, which computes the template context: the
    # session must be loaded by then.
    app[CLOCK] = Clock()
    app.middlewares.append(console_middleware)
    app.cleanup_ctx.append(_resources)
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        context_processors=[_context],
    )
    r = app.router
    r.add_get("/console/login", login.login_page)
    r.add_post("/console/login", login.login)
    r.add_get("/console/login/{step:code|enrol}", login.step_page)
    r.add_post("/console/login/{step:code|enrol}", login.step_submit)
    r.add_post("/console/logout", login.logout)
    r.add_get("/console/account", account.account_page)
    r.add_post("/console/account/totp", account.enable_totp)
    r.add_get("/console/", views.inbox)
    r.add_get("/console", _to_inbox)
    r.add_get("/console/alerts.json", views.alerts_json)
    r.add_get("/console/cases.csv", export.export_cases)
    r.add_get("/console/dashboard", dashboard.dashboard_page)
    r.add_get("/console/cases/{reference}", views.case_page)
    r.add_post(
        "/console/cases/{reference}/{action:acknowledge|status|note|message|takeover|release|release_held}",
        views.case_action,
    )
    r.add_post("/console/cases/{reference}/assign", casework.assign)
    r.add_post("/console/cases/{reference}/next_step", casework.next_step)
    r.add_post("/console/cases/{reference}/close", casework.close)
    r.add_post("/console/cases/{reference}/transfer", casework.transfer)
    r.add_post("/console/cases/{reference}/refer", casework.refer)
    r.add_get("/console/conversations", views.conversations_page)
    r.add_get("/console/search", views.search_page)
    r.add_get("/console/conversations/{public_id:[0-9a-f]{32}}", views.conversation_page)
    r.add_post(
        "/console/conversations/{public_id:[0-9a-f]{32}}/{action:message|takeover|release}",
        views.conversation_action,
    )
    r.add_post(
        "/console/conversations/{public_id:[0-9a-f]{32}}/messages/{message_id:[0-9]{1,18}}/intent",
        corrections.mark_intent,
    )
    r.add_get("/console/announcements", announcements.list_page)
    r.add_post("/console/announcements", announcements.create)
    r.add_get("/console/announcements/{id:[0-9]{1,18}}", announcements.preview_page)
    r.add_post("/console/announcements/{id:[0-9]{1,18}}/send", announcements.send)
    r.add_get("/console/media/{media_id:[0-9]{1,18}}", media.media_file)
    r.add_get("/console/audit", audit.audit_page)
    r.add_get("/console/users", users.users_page)
    r.add_post("/console/users", users.create_user)
    r.add_post(
        "/console/users/{user_id:[0-9]{1,18}}/{action:deactivate|activate|password|totp_reset}",
        users.user_action,
    )
    r.add_static("/console/static", HERE / "static")
