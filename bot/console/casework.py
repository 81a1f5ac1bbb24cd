"""Case work views: assign a case to an officer of its mission, or take it."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from bot.console.auth import STAFF_KEY
from bot.console.context import CLOCK, CONTENT
from bot.console.views import visible_case
from bot.keys import SESSIONMAKER, SETTINGS
from pmi import cases, casework, deadlines, outcomes
from pmi.models import CaseStatus, StaffUser


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


def _due(value: str, case_due: datetime) -> datetime:
    """The due date typed (`YYYY-MM-DDTHH:MM`, UTC), or the case's follow-up deadline."""
    if not value:
        return case_due
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M").replace(tzinfo=UTC)
    except ValueError:
        raise web.HTTPBadRequest(text="due date: YYYY-MM-DDTHH:MM") from None


async def next_step(request: web.Request) -> web.StreamResponse:
    """Set what must happen next and by when (blank: the follow-up deadline from now)."""
    user = request[STAFF_KEY]
    form = await request.post()
    action = str(form.get("next_action", "")).strip()
    if not action or len(action) > 500:
        raise web.HTTPBadRequest(text="next step: 1-500 characters")
    async with request.app[SESSIONMAKER]() as s, s.begin():
        case = await visible_case(request, s, "next_step")
        now = request.app[CLOCK].now()
        follow_up = deadlines.follow_up_due(case, request.app[SETTINGS].deadlines, now)
        due_at = _due(str(form.get("due", "")).strip(), follow_up)
        try:
            await casework.set_next_step(s, case, action, due_at, user)
        except casework.CaseworkError as error:
            raise web.HTTPConflict(text=str(error)) from None
    raise web.HTTPSeeOther(f"/console/cases/{case.reference}")


async def close(request: web.Request) -> web.StreamResponse:
    """Close the case with an outcome from the list and a closing note."""
    user = request[STAFF_KEY]
    form = await request.post()
    content = request.app[CONTENT]
    async with request.app[SESSIONMAKER]() as s, s.begin():
        case = await visible_case(request, s, "close")
        notice = cases.status_notice(case, CaseStatus.CLOSED, content.labels, content.replies)
        try:
            await outcomes.close_case(
                s,
                case,
                content.outcomes,
                str(form.get("outcome", "")),
                str(form.get("note", "")),
                user,
                notice,
            )
        except outcomes.OutcomeError as error:
            raise web.HTTPBadRequest(text=str(error)) from None
    raise web.HTTPSeeOther(f"/console/cases/{case.reference}")
