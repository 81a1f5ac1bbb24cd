"""Case work views: assign a case to an officer of its mission, or take it."""

from __future__ import annotations

from aiohttp import web

from bot.console.auth import STAFF_KEY
from bot.console.views import visible_case
from bot.keys import SESSIONMAKER
from pmi import casework
from pmi.models import StaffUser


async def assign(request: web.Request) -> web.StreamResponse:
    """Give the case an owner: the officer chosen, or the user ("me")."""
    user = request[STAFF_KEY]
    choice = str((await request.post()).get("officer", ""))
    async with request.app[SESSIONMAKER]() as s, s.begin():
        case = await visible_case(request, s, "assign")
        officer = user if choice == "me" else None
        if officer is None and choice.isdigit():
            officer = await s.get(StaffUser, int(choice))
        if officer is None or not casework.may_own(officer, case):
            raise web.HTTPBadRequest(text="choose an officer of this case's mission")
        await casework.assign(s, case, officer, user)
    raise web.HTTPSeeOther(f"/console/cases/{case.reference}")
