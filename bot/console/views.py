"""Console pages: login, case inbox, case page and its actions, live alerts, transcripts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time, timedelta

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.console.auth import (
    SESSION_KEY,
    STAFF_KEY,
    check_csrf,
    clear_cookie,
    cookie_name,
    new_login_csrf,
    set_cookie,
)
from bot.console.context import CONTENT
from bot.keys import SESSIONMAKER, SETTINGS
from pmi import case_export, cases, corrections, handoff, messages, staff, transcripts
from pmi import media as media_records
from pmi.db import utcnow
from pmi.models import (
    Case,
    CaseStatus,
    Contact,
    InboundMessage,
    Priority,
    Role,
    StaffUser,
)

MAX_TEXT = 4000
LOGIN_CSRF = "pmi_login_csrf"
CHANNELS = ("webchat", "telegram", "whatsapp")


def client_ip(request: web.Request) -> str:
    return request.remote or "?"


async def login_page(request: web.Request) -> web.Response:
    """Show the login form with a fresh double-submit CSRF token."""
    return await _render_login(request, None, 200)


async def _render_login(request: web.Request, error: str | None, status: int) -> web.Response:
    token = new_login_csrf()
    response = aiohttp_jinja2.render_template(
        "login.html", request, {"csrf": token, "error": error}, status=status
    )
    set_cookie(response, request, LOGIN_CSRF, token)
    return response


async def login(request: web.Request) -> web.StreamResponse:
    """Check the password (throttled), rotate the session and go to the inbox."""
    form = await request.post()
    check_csrf(request.cookies.get(cookie_name(request, LOGIN_CSRF), ""), form.get("csrf"))
    username, password = str(form.get("username", ""))[:64], str(form.get("password", ""))
    settings = request.app[SETTINGS].console
    user: StaffUser | None = None
    async with request.app[SESSIONMAKER]() as s, s.begin():
        window = timedelta(minutes=settings.login_window_minutes)
        if await staff.recent_failures(s, username, window) >= settings.login_max_failures:
            await staff.audit(s, None, "login_throttled", username)
            throttled = True
        else:
            throttled = False
            user = await staff.authenticate(s, username, password, client_ip(request))
            if user is not None:
                old = request.cookies.get(cookie_name(request, "pmi_session"))
                if old:
                    await staff.close_session(s, old)
                token, _ = await staff.open_session(s, user)
                await staff.audit(s, user, "login")
            else:
                await staff.audit(s, None, "login_failed", username)
    if throttled:
        return await _render_login(request, "Terlalu banyak percobaan. Coba lagi nanti.", 429)
    if user is None:
        return await _render_login(request, "Nama pengguna atau kata sandi salah.", 401)
    response = web.HTTPFound("/console/")
    set_cookie(response, request, "pmi_session", token)
    clear_cookie(response, request, LOGIN_CSRF)
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    token = request.cookies.get(cookie_name(request, "pmi_session"), "")
    async with request.app[SESSIONMAKER]() as s, s.begin():
        await staff.close_session(s, token)
        await staff.audit(s, request[STAFF_KEY], "logout")
    response = web.HTTPFound("/console/login")
    clear_cookie(response, request, "pmi_session")
    raise response


def scope(user: StaffUser) -> str | None:
    """The mission a user is limited to; None for operators and admins."""
    return user.mission_code if user.role == Role.MISSION else None


def case_filters(request: web.Request) -> dict:
    q = request.query
    filters: dict = {}
    if q.get("status") in CaseStatus.ALL:
        filters["status"] = q["status"]
    if q.get("priority") in (Priority.URGENT, Priority.NORMAL):
        filters["priority"] = q["priority"]
    content = request.app[CONTENT]
    if q.get("mission") in content.missions.by_code:
        filters["mission_code"] = q["mission"]
    if q.get("category") in content.labels.categories:
        filters["category"] = q["category"]
    country = q.get("country", "").strip().upper()
    if len(country) == 2 and country.isalpha():
        filters["country"] = country
    for key, param in (("since", "from"), ("until", "to")):
        try:
            day = datetime.strptime(q.get(param, ""), "%Y-%m-%d").date()
        except ValueError:
            continue
        moment = datetime.combine(day, time(), tzinfo=utcnow().tzinfo)
        filters[key] = moment + timedelta(days=1) if key == "until" else moment
    return filters


def overdue(case: Case, request: web.Request) -> bool:
    settings = request.app[SETTINGS].console
    if case.acknowledged_at is not None or case.status != CaseStatus.NEW:
        return False
    target = (
        timedelta(minutes=settings.target_urgent_minutes)
        if case.priority == Priority.URGENT
        else timedelta(hours=settings.target_normal_hours)
    )
    return utcnow() - case.created_at > target


@aiohttp_jinja2.template("inbox.html")
async def inbox(request: web.Request) -> dict:
    """The case inbox, limited to the user's mission for mission staff."""
    user = request[STAFF_KEY]
    filters = case_filters(request)
    async with request.app[SESSIONMAKER]() as s:
        rows = await cases.visible_cases(s, mission_code=scope(user), filters=filters)
        counts = await cases.status_counts(s, scope(user))
    return {
        "cases": rows,
        "counts": counts,
        "filters": request.query,
        "overdue": {c.id for c in rows if overdue(c, request)},
        "now": utcnow(),
        "last_id": max((c.id for c in rows), default=0),
        "personal_export": case_export.may_export_personal_data(user),
    }


async def _visible_case(request: web.Request, s: AsyncSession, action: str = "view") -> Case:
    """The case of the URL if this user may see it; otherwise 404, and the attempt is logged."""
    user = request[STAFF_KEY]
    reference = request.match_info["reference"].upper()
    case = await s.scalar(select(Case).where(Case.reference == reference))
    limit = scope(user)
    if case is None or (limit is not None and case.mission_code != limit):
        await staff.audit(s, user, "denied", reference, {"action": action})
        await s.commit()
        raise web.HTTPNotFound(text="case not found")
    return case


@aiohttp_jinja2.template("case.html")
async def case_page(request: web.Request) -> dict:
    """One case: the form's data, the conversation, the timeline and the actions."""
    user = request[STAFF_KEY]
    async with request.app[SESSIONMAKER]() as s, s.begin():
        case = await _visible_case(request, s)
        contact = await s.get(Contact, case.contact_id) if case.contact_id else None
        events = await cases.case_events(s, case)
        talk = await messages.conversation(s, contact.id) if contact else []
        files = await media_records.of_inbound_ids(s, _inbound_ids(talk))
        await staff.audit(s, user, "view_case", case.reference)
    return {
        "case": case,
        "contact": contact,
        "events": events,
        "conversation": talk,
        "media": files,
        "statuses": CaseStatus.ALL,
        "csrf": request[SESSION_KEY].csrf_token,
        "overdue": overdue(case, request),
    }


def _inbound_ids(talk: Sequence[object]) -> list[int]:
    return [m.id for m in talk if isinstance(m, InboundMessage)]


def _text(form: dict, name: str = "text") -> str:
    text = str(form.get(name, "")).strip()
    if not text or len(text) > MAX_TEXT:
        raise web.HTTPBadRequest(text=f"'{name}' must be 1-{MAX_TEXT} characters")
    return text


async def case_action(request: web.Request) -> web.StreamResponse:
    """Acknowledge, change status, note, message the worker, take over or give back."""
    user = request[STAFF_KEY]
    action = request.match_info["action"]
    form = dict(await request.post())
    content = request.app[CONTENT]
    actor = f"staff:{user.username}"
    async with request.app[SESSIONMAKER]() as s, s.begin():
        case = await _visible_case(request, s, action)
        contact = await s.get(Contact, case.contact_id) if case.contact_id else None
        if action in ("acknowledge", "status"):
            status = CaseStatus.ACKNOWLEDGED if action == "acknowledge" else form.get("status")
            if status not in CaseStatus.ALL:
                raise web.HTTPBadRequest(text="unknown status")
            notice = cases.status_notice(case, str(status), content.labels, content.replies)
            await cases.change_status(s, case, str(status), actor, notice)
        elif action == "note":
            await cases.add_event(s, case, "note", {"text": _text(form)}, actor=actor)
        elif action == "message":
            text = _text(form)
            if contact is None:
                raise web.HTTPConflict(text="the worker's chat no longer exists")
            await handoff.staff_reply(s, contact, text)
            await cases.add_event(s, case, "message", {"text": text}, actor=actor)
        elif action in ("takeover", "release") and contact is not None:
            if action == "takeover":
                await handoff.start_handoff(s, contact)
            else:
                notice = content.replies.get("handoff_ended", case.language)
                await handoff.end_handoff(s, contact, notice)
            await cases.add_event(s, case, action, {}, actor=actor)
        else:
            raise web.HTTPBadRequest(text="unknown action")
        await staff.audit(s, user, f"case_{action}", case.reference)
    raise web.HTTPSeeOther(f"/console/cases/{case.reference}")


async def alerts_json(request: web.Request) -> web.Response:
    """New urgent cases since `after` for the inbox's live alert (polled every few seconds)."""
    try:
        after = max(0, int(request.query.get("after", "0")))
    except ValueError:
        raise web.HTTPBadRequest(text="'after' must be a number") from None
    async with request.app[SESSIONMAKER]() as s:
        rows = await cases.urgent_since(s, scope(request[STAFF_KEY]), after)
    return web.json_response(
        {
            "cases": [
                {"id": c.id, "reference": c.reference, "country": c.country, "status": c.status}
                for c in rows
            ]
        }
    )


async def require_admin(request: web.Request, what: str) -> StaffUser:
    """Admins only; anyone else gets 404, and the attempt is logged."""
    user = request[STAFF_KEY]
    if user.role != Role.ADMIN:
        async with request.app[SESSIONMAKER]() as s, s.begin():
            await staff.audit(s, user, "denied", what)
        raise web.HTTPNotFound(text="not found")
    return user


def operator_only(request: web.Request) -> StaffUser:
    """Whole conversations are for hotline operators and admins, not mission staff."""
    user = request[STAFF_KEY]
    if user.role == Role.MISSION:
        raise web.HTTPNotFound(text="not found")
    return user


@aiohttp_jinja2.template("conversations.html")
async def conversations_page(request: web.Request) -> dict:
    """Conversations handed to a person, waiting for staff."""
    operator_only(request)
    async with request.app[SESSIONMAKER]() as s:
        return {"contacts": await messages.handoff_contacts(s)}


async def _contact(request: web.Request, s: AsyncSession) -> Contact:
    contact = await s.scalar(
        select(Contact).where(Contact.public_id == request.match_info["public_id"])
    )
    if contact is None:
        raise web.HTTPNotFound(text="conversation not found")
    return contact


@aiohttp_jinja2.template("conversation.html")
async def conversation_page(request: web.Request) -> dict:
    """A whole transcript, with what Rasa understood and the operators' corrections."""
    user = operator_only(request)
    async with request.app[SESSIONMAKER]() as s, s.begin():
        contact = await _contact(request, s)
        talk = await messages.conversation(s, contact.id)
        inbound_ids = _inbound_ids(talk)
        marked = await corrections.corrections_by_message(s, inbound_ids)
        files = await media_records.of_inbound_ids(s, inbound_ids)
        await staff.audit(s, user, "view_conversation", contact.public_id)
    return {
        "contact": contact,
        "conversation": talk,
        "media": files,
        "intents": request.app[CONTENT].intents,
        "corrected": marked,
    }


async def conversation_action(request: web.Request) -> web.StreamResponse:
    """Reply to the worker, take the conversation over, or give it back to the bot."""
    user = operator_only(request)
    action = request.match_info["action"]
    form = dict(await request.post())
    async with request.app[SESSIONMAKER]() as s, s.begin():
        contact = await _contact(request, s)
        if action == "message":
            await handoff.staff_reply(s, contact, _text(form))
        elif action == "takeover":
            await handoff.start_handoff(s, contact)
        else:
            language = contact.language or request.app[SETTINGS].language.default
            notice = request.app[CONTENT].replies.get("handoff_ended", language)
            await handoff.end_handoff(s, contact, notice)
        await staff.audit(s, user, f"conversation_{action}", contact.public_id)
    raise web.HTTPSeeOther(f"/console/conversations/{contact.public_id}")


@aiohttp_jinja2.template("search.html")
async def search_page(request: web.Request) -> dict:
    """Search workers' messages across conversations (operators and admins)."""
    user = operator_only(request)
    q = request.query
    supported = request.app[SETTINGS].language.supported
    intents = (*request.app[CONTENT].intents, corrections.FALLBACK_INTENT)
    threshold = request.app[SETTINGS].console.low_confidence
    dates = case_filters(request)
    filters = transcripts.SearchFilters(
        text=q.get("q", "").strip()[:200] or None,
        channel=q.get("channel") if q.get("channel") in CHANNELS else None,
        language=q.get("language") if q.get("language") in supported else None,
        intent=q.get("intent") if q.get("intent") in intents else None,
        low_confidence_below=threshold if q.get("low") == "1" else None,
        since=dates.get("since"),
        until=dates.get("until"),
    )
    results: Sequence[tuple[InboundMessage, Contact]] = []
    if filters.any():
        async with request.app[SESSIONMAKER]() as s, s.begin():
            results = await transcripts.search(s, filters)
            detail = {
                "q": filters.text is not None,
                "intent": filters.intent,
                "low": filters.low_confidence_below is not None,
            }
            await staff.audit(s, user, "search", None, detail)
    return {
        "results": results,
        "query": q,
        "languages": supported,
        "channels": CHANNELS,
        "intents": intents,
        "threshold": threshold,
    }
