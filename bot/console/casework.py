"""Case work views: owner, next step, closing, transfer to another mission and referral."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiohttp import web

from bot.console.auth import STAFF_KEY
from bot.console.context import CLOCK, CONTENT
from bot.console.views import scope, visible_case
from bot.keys import SESSIONMAKER, SETTINGS
from pmi import cases, casework, deadlines, outcomes, referrals
from pmi.models import CaseStatus, StaffUser

REFERRAL_FOLLOW_UP = timedelta(days=7)  # when to check a referral's outcome, unless typed


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


async def transfer(request: web.Request) -> web.StreamResponse:
    """Move the case to another mission with a reason; the old mission loses it."""
    user = request[STAFF_KEY]
    form = await request.post()
    content = request.app[CONTENT]
    target = content.missions.by_code.get(str(form.get("mission", "")))
    if target is None:
        raise web.HTTPBadRequest(text="choose a mission from the list")
    async with request.app[SESSIONMAKER]() as s, s.begin():
        case = await visible_case(request, s, "transfer")
        notice = content.replies.get("case_transferred", case.language).format(
            reference=case.reference, mission=target.name
        )
        try:
            await casework.transfer(s, case, target, str(form.get("reason", "")), user, notice)
        except casework.CaseworkError as error:
            raise web.HTTPBadRequest(text=str(error)) from None
    if scope(user) is not None and scope(user) != target.code:
        raise web.HTTPSeeOther("/console/?transferred=" + case.reference)  # no longer theirs
    raise web.HTTPSeeOther(f"/console/cases/{case.reference}")


def _follow_up(value: str, now: datetime) -> datetime:
    """The follow-up date typed (`YYYY-MM-DD`, end of that day UTC), or a week from now."""
    if not value:
        return now + REFERRAL_FOLLOW_UP
    try:
        day = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise web.HTTPBadRequest(text="follow-up date: YYYY-MM-DD") from None
    if day.date() < now.date():
        raise web.HTTPBadRequest(text="follow-up date is in the past")
    return day.replace(hour=23, minute=59)


async def refer(request: web.Request) -> web.StreamResponse:
    """Refer the case to a domestic authority, with its reference number and a follow-up date."""
    user = request[STAFF_KEY]
    form = await request.post()
    content = request.app[CONTENT]
    now = request.app[CLOCK].now()
    referral = referrals.Referral(
        body=str(form.get("body", "")),
        province=str(form.get("province", "")) or None,
        reference=str(form.get("reference", "")).strip(),
        follow_up=_follow_up(str(form.get("follow_up", "")).strip(), now),
        note=str(form.get("note", "")),
    )
    async with request.app[SESSIONMAKER]() as s, s.begin():
        case = await visible_case(request, s, "refer")
        notice = cases.status_notice(case, CaseStatus.REFERRED, content.labels, content.replies)
        if case.status == CaseStatus.REFERRED:
            notice = None  # an update of the referral: the worker was told already
        try:
            await referrals.refer(s, case, content.referrals, referral, user, notice)
        except referrals.ReferralError as error:
            raise web.HTTPBadRequest(text=str(error)) from None
    raise web.HTTPSeeOther(f"/console/cases/{case.reference}")
