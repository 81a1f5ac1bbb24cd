"""Console pages: case inbox, case page and its actions, live alerts, transcripts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time, timedelta

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot.console.auth import SESSION_KEY, STAFF_KEY
from bot.console.context import CLOCK, CONTENT
from bot.keys import SESSIONMAKER, SETTINGS
from pmi import (
    case_export,
    cases,
    casework,
    corrections,
    deadlines,
    handoff,
    messages,
    safety,
    staff,
    transcripts,
)
from pmi import media as media_records
from pmi.db import utcnow
from pmi.models import (
    Case,
    CaseStatus,
    Contact,
    InboundMessage,
    OutboundMessage,
    Priority,
    Role,
    StaffUser,
)

MAX_TEXT = 4000
POSSIBLE_DANGER_DAYS = timedelta(days=7)  # the conversations page lists these as flagged
CHANNELS = ("webchat", "telegram", "whatsapp")


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
    if q.get("mine") == "1" and STAFF_KEY in request:
        filters["owner_id"] = request[STAFF_KEY].id
    return filters


def overdue(case: Case, request: web.Request) -> bool:
    """Past the acknowledgement target, or past the due date of its next step."""
    now = request.app[CLOCK].now()
    if deadlines.is_overdue(case, request.app[SETTINGS].deadlines, now):
        return True
    settings = request.app[SETTINGS].console
    if case.acknowledged_at is not None or case.status != CaseStatus.NEW:
        return False
    target = (
        timedelta(minutes=settings.target_urgent_minutes)
        if case.priority == Priority.URGENT
        else timedelta(hours=settings.target_normal_hours)
    )
    return now - case.created_at > target


@aiohttp_jinja2.template("inbox.html")
async def inbox(request: web.Request) -> dict:
    """The case inbox, limited to the user's mission for mission staff."""
    user = request[STAFF_KEY]
    filters = case_filters(request)
    async with request.app[SESSIONMAKER]() as s:
        rows = await cases.visible_cases(s, mission_code=scope(user), filters=filters)
        counts = await cases.status_counts(s, scope(user))
        unassigned = await casework.unassigned_count(s, scope(user))
        owners = await casework.owner_names(s, rows)
    late = {c.id for c in rows if overdue(c, request)}
    return {
        "cases": sorted(rows, key=lambda c: c.id not in late),  # overdue first
        "unassigned": unassigned,
        "owners": owners,
        "counts": counts,
        "filters": request.query,
        "overdue": late,
        "now": request.app[CLOCK].now(),
        "last_id": max((c.id for c in rows), default=0),
        "personal_export": case_export.may_export_personal_data(user),
    }


async def visible_case(request: web.Request, s: AsyncSession, action: str = "view") -> Case:
    """The case of the URL if this user may see it; otherwise 404, and the attempt is logged."""
    user = request[STAFF_KEY]
    reference = request.match_info["reference"].upper()
    case = await cases.case_by_reference(s, reference)
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
        case = await visible_case(request, s)
        contact = await s.get(Contact, case.contact_id) if case.contact_id else None
        events = await cases.case_events(s, case)
        talk = await messages.conversation(s, contact.id) if contact else []
        if scope(user) is not None and talk:
            # Mission staff read only the part of the talk about their mission's case.
            since, until = await cases.mission_window(s, case)
            talk = [m for m in talk if since <= _when(m) and (until is None or _when(m) < until)]
        files = await media_records.of_inbound_ids(s, _inbound_ids(talk))
        held = await safety.held_count(s, contact.id) if contact else 0
        officers = await casework.officers_for(s, case)
        owner = (await casework.owner_names(s, [case])).get(case.owner_id or 0)
        await staff.audit(s, user, "view_case", case.reference)
    return {
        "case": case,
        "contact": contact,
        "unsafe": _unsafe(case, contact),
        "held": held,
        "events": events,
        "conversation": talk,
        "media": files,
        "statuses": CaseStatus.ALL,
        "csrf": request[SESSION_KEY].csrf_token,
        "overdue": overdue(case, request),
        "officers": officers,
        "owner": owner,
        "due": deadlines.due(case, request.app[SETTINGS].deadlines),
        "canned": request.app[CONTENT].canned,
        "draft": _draft(request, case),
    }


def _draft(request: web.Request, case: Case) -> str:
    """The canned reply chosen (`?canned=ID`), in the worker's language, ready to edit."""
    missions = request.app[CONTENT].missions
    mission = missions.by_code.get(case.mission_code)
    name = mission.name if mission else case.mission_code
    chosen = request.query.get("canned", "")
    return request.app[CONTENT].canned.render(chosen, case.language, case.reference, name) or ""


def _when(message: InboundMessage | OutboundMessage) -> datetime:
    return message.received_at if isinstance(message, InboundMessage) else message.created_at


def _unsafe(case: Case | None, contact: Contact | None) -> bool:
    """Whether writing to this worker's chat may endanger her (she said it is not safe)."""
    if contact is not None and contact.unsafe_since is not None:
        return True
    return case is not None and case.safe_to_reply not in (None, "yes")


def _override(form: dict) -> bool:
    return form.get("override") == "1"


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
        case = await visible_case(request, s, action)
        contact = await s.get(Contact, case.contact_id) if case.contact_id else None
        if action in ("acknowledge", "status"):
            status = CaseStatus.ACKNOWLEDGED if action == "acknowledge" else form.get("status")
            if status not in CaseStatus.ALL:
                raise web.HTTPBadRequest(text="unknown status")
            if status == CaseStatus.CLOSED:
                raise web.HTTPBadRequest(text="closing needs an outcome: use the close form")
            notice = cases.status_notice(case, str(status), content.labels, content.replies)
            await cases.change_status(s, case, str(status), actor, notice)
        elif action == "note":
            await cases.add_event(s, case, "note", {"text": _text(form)}, actor=actor)
        elif action == "message":
            text = _text(form)
            if blanks := content.canned.unfilled(text):
                raise web.HTTPBadRequest(text="fill in the blanks first: " + ", ".join(blanks))
            if contact is None:
                raise web.HTTPConflict(text="the worker's chat no longer exists")
            override = _override(form) and _unsafe(case, contact)
            await handoff.staff_reply(s, contact, text, override=override)
            kind = "message_unsafe_override" if override else "message"
            await cases.add_event(s, case, kind, {"text": text}, actor=actor)
            if override:
                await staff.audit(s, user, "unsafe_override", case.reference, {"what": "message"})
        elif action == "release_held":
            if contact is None or not _override(form):
                raise web.HTTPBadRequest(text="confirm that you understand the risk")
            released = await safety.release_held(s, contact.id)
            await cases.add_event(s, case, "held_released", {"count": released}, actor=actor)
            await staff.audit(s, user, "unsafe_override", case.reference, {"what": "held"})
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
    since = utcnow() - POSSIBLE_DANGER_DAYS
    async with request.app[SESSIONMAKER]() as s:
        return {
            "contacts": await messages.handoff_contacts(s),
            "possible_danger": await transcripts.possible_danger(s, since),
        }


async def _contact(request: web.Request, s: AsyncSession) -> Contact:
    contact = await cases.contact_for_conversation(s, request.match_info["public_id"])
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
        "unsafe": contact.unsafe_since is not None,
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
            override = _override(form) and contact.unsafe_since is not None
            await handoff.staff_reply(s, contact, _text(form), override=override)
            if override:
                await staff.audit(s, user, "unsafe_override", contact.public_id)
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
