"""CSV export of the inbox's cases (its filters apply; mission staff get only their mission)."""

from __future__ import annotations

from aiohttp import web

from bot.console.auth import STAFF_KEY
from bot.console.views import case_filters, scope
from bot.keys import SESSIONMAKER
from pmi import case_export, cases, staff
from pmi.db import utcnow

MAX_ROWS = 20_000


async def export_cases(request: web.Request) -> web.Response:
    """Download cases as CSV; personal data only if asked for and the role allows it."""
    user = request[STAFF_KEY]
    filters = case_filters(request)
    personal = request.query.get("personal") == "1"
    async with request.app[SESSIONMAKER]() as s, s.begin():
        detail = {
            "filters": {k: str(v) for k, v in filters.items()},
            "personal_data": personal,
        }
        if personal and not case_export.may_export_personal_data(user):
            await staff.audit(s, user, "denied", "export", detail)
            await s.commit()  # kept: raising inside the block would roll it back
            raise web.HTTPForbidden(text="your role may not export personal data")
        rows = await cases.visible_cases(
            s, mission_code=scope(user), filters=filters, limit=MAX_ROWS
        )
        detail["rows"] = len(rows)
        await staff.audit(s, user, "export_cases", None, detail)
    name = f"cases_{utcnow().strftime('%Y%m%d_%H%M')}.csv"
    return web.Response(
        text=case_export.to_csv(rows, personal),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
