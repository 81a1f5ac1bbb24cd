"""User management for admins: list, create, deactivate/reactivate, reset password or 2FA."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot.console.context import CONTENT
from bot.console.views import require_admin
from bot.keys import SESSIONMAKER
from pmi import staff, twofactor
from pmi.models import Role, StaffUser


async def _render(
    request: web.Request, s: AsyncSession, error: str | None = None, status: int = 200
) -> web.Response:
    context = {"users": await staff.users(s), "roles": Role.ALL, "error": error}
    return aiohttp_jinja2.render_template("users.html", request, context, status=status)


async def users_page(request: web.Request) -> web.Response:
    """The list of console accounts and the form to add one."""
    await require_admin(request, "users")
    async with request.app[SESSIONMAKER]() as s:
        return await _render(request, s)


async def create_user(request: web.Request) -> web.StreamResponse:
    """Create an account; mission staff need a known mission code."""
    admin = await require_admin(request, "users")
    form = await request.post()
    username = str(form.get("username", "")).strip()
    role = str(form.get("role", ""))
    mission = str(form.get("mission", "")) or None
    async with request.app[SESSIONMAKER]() as s, s.begin():
        try:
            if role == Role.MISSION and mission not in request.app[CONTENT].missions.by_code:
                raise staff.StaffError("choose the mission of this mission staff member")
            user = await staff.create_user(
                s, username, str(form.get("password", "")), role, mission
            )
        except staff.StaffError as exc:
            return await _render(request, s, str(exc), 400)
        detail = {"role": role, "mission": user.mission_code}
        await staff.audit(s, admin, "user_created", user.username, detail)
    raise web.HTTPSeeOther("/console/users")


async def user_action(request: web.Request) -> web.StreamResponse:
    """Deactivate, reactivate, set a new password or reset two-factor (these end sessions)."""
    admin = await require_admin(request, "users")
    action = request.match_info["action"]
    form = await request.post()
    async with request.app[SESSIONMAKER]() as s, s.begin():
        user = await s.get(StaffUser, int(request.match_info["user_id"]))
        if user is None:
            raise web.HTTPNotFound(text="user not found")
        try:
            if action in ("deactivate", "activate"):
                if user.id == admin.id:
                    raise staff.StaffError("you cannot deactivate your own account")
                await staff.set_active(s, user, action == "activate")
            elif action == "totp_reset":
                if user.id == admin.id:
                    raise staff.StaffError("another admin must reset your two-factor login")
                await twofactor.reset(s, user)  # they set it up again at their next login
                await staff.end_sessions(s, user)
            else:
                await staff.reset_password(s, user, str(form.get("password", "")))
        except staff.StaffError as exc:
            return await _render(request, s, str(exc), 400)
        await staff.audit(s, admin, f"user_{action}", user.username)
    raise web.HTTPSeeOther("/console/users")
