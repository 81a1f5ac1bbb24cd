"""The audit log for admins: filters (user, action, target, dates) and pages."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from bot.console.views import case_filters, require_admin
from bot.keys import SESSIONMAKER
from pmi import erasure, staff


def _page(request: web.Request) -> int:
    try:
        return max(1, min(int(request.query.get("page", "1")), 100_000))
    except ValueError:
        return 1


@aiohttp_jinja2.template("audit.html")
async def audit_page(request: web.Request) -> dict:
    """Read and filter the audit log (it is never edited or deleted by the app)."""
    await require_admin(request, "audit")
    q = request.query
    dates = case_filters(request)
    page = _page(request)
    async with request.app[SESSIONMAKER]() as s:
        users = await staff.users(s)
        actions = await staff.audit_actions(s)
        by_name = {u.username: u.id for u in users}
        filters = staff.AuditFilters(
            user_id=by_name.get(q.get("user", "")),
            action=q.get("action") if q.get("action") in actions else None,
            target=q.get("target", "").strip()[:64] or None,
            since=dates.get("since"),
            until=dates.get("until"),
        )
        entries, total = await staff.audit_entries(s, filters, page)
        erasures = await erasure.pending(s)
    pages = max(1, -(-total // staff.AUDIT_PAGE))
    params = {k: v for k, v in q.items() if k != "page" and v}
    return {
        "entries": entries,
        "total": total,
        "page": page,
        "pages": pages,
        "params": params,
        "query": q,
        "users": users,
        "actions": actions,
        "erasures": erasures,
    }
