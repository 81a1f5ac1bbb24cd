"""The dashboard: charts of cases and conversations, drawn server-side as SVG."""

from __future__ import annotations

from datetime import timedelta

import aiohttp_jinja2
from aiohttp import web

from bot.console.auth import STAFF_KEY
from bot.console.views import scope
from bot.keys import SESSIONMAKER, SETTINGS
from pmi import casework_dashboard, dashboard
from pmi.db import utcnow

WEEKS = (4, 12, 26, 52)


@aiohttp_jinja2.template("dashboard.html")
async def dashboard_page(request: web.Request) -> dict:
    """Numbers for the last N weeks; mission staff see only their mission's."""
    user = request[STAFF_KEY]
    try:
        weeks = int(request.query.get("weeks", "12"))
    except ValueError:
        weeks = 12
    if weeks not in WEEKS:
        weeks = 12
    now = utcnow()
    since = now - timedelta(weeks=weeks)
    async with request.app[SESSIONMAKER]() as s:
        numbers = await dashboard.compute(s, since=since, now=now, mission_code=scope(user))
        work = await casework_dashboard.compute(
            s, request.app[SETTINGS].deadlines, since=since, now=now, mission_code=scope(user)
        )
    return {"d": numbers, "w": work, "weeks": weeks, "choices": WEEKS}
