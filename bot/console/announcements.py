"""Announcements to subscribed workers: write (per language), preview, send (operators, admins)."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot.console.context import CONTENT
from bot.console.views import operator_only
from bot.keys import OUTBOX, SESSIONMAKER, SETTINGS
from pmi import announcements, staff
from pmi.models import Announcement


def _footers(request: web.Request) -> dict[str, str]:
    replies = request.app[CONTENT].replies
    languages = request.app[SETTINGS].language.supported
    return {lang: replies.get("announcement_footer", lang) for lang in languages}


async def _render_list(
    request: web.Request, s: AsyncSession, error: str | None = None, status: int = 200
) -> web.Response:
    rows = await announcements.recent(s)
    context = {
        "announcements": rows,
        "languages": request.app[SETTINGS].language.supported,
        "countries": sorted(request.app[CONTENT].missions.countries),
        "error": error,
        "form": await request.post() if request.method == "POST" else {},
    }
    return aiohttp_jinja2.render_template("announcements.html", request, context, status=status)


async def list_page(request: web.Request) -> web.Response:
    """Past announcements and the form for a new one."""
    operator_only(request)
    async with request.app[SESSIONMAKER]() as s:
        return await _render_list(request, s)


async def create(request: web.Request) -> web.StreamResponse:
    """Save a draft and show its preview."""
    user = operator_only(request)
    form = await request.post()
    settings = request.app[SETTINGS]
    supported = settings.language.supported
    country = str(form.get("country", "")) or None
    language = str(form.get("language", "")) or None
    async with request.app[SESSIONMAKER]() as s, s.begin():
        try:
            if country is not None and country not in request.app[CONTENT].missions.countries:
                raise announcements.AnnouncementError("unknown country")
            if language is not None and language not in supported:
                raise announcements.AnnouncementError("unknown language")
            texts = announcements.clean_texts(
                {lang: str(form.get(f"text_{lang}", "")) for lang in supported}, supported
            )
        except announcements.AnnouncementError as exc:
            return await _render_list(request, s, str(exc), 400)
        draft = await announcements.create_draft(s, texts, country, language, user)
        detail = {"country": country, "language": language, "languages": sorted(texts)}
        await staff.audit(s, user, "announcement_created", f"announcement:{draft.id}", detail)
    raise web.HTTPSeeOther(f"/console/announcements/{draft.id}")


async def _announcement(request: web.Request, s: AsyncSession) -> Announcement:
    announcement = await s.get(Announcement, int(request.match_info["id"]))
    if announcement is None:
        raise web.HTTPNotFound(text="announcement not found")
    return announcement


@aiohttp_jinja2.template("announcement.html")
async def preview_page(request: web.Request) -> dict:
    """What each language's subscribers will read, and how many will get it."""
    operator_only(request)
    default = request.app[SETTINGS].language.default
    footers = _footers(request)
    async with request.app[SESSIONMAKER]() as s:
        announcement = await _announcement(request, s)
        counts = await announcements.preview(s, announcement, default)
    return {
        "a": announcement,
        "counts": counts,
        "total": sum(counts.values()),
        "previews": {
            lang: announcements.text_for(announcement, lang, footers[lang]) for lang in footers
        },
    }


async def send(request: web.Request) -> web.StreamResponse:
    """Queue the announcement for its subscribers (once)."""
    user = operator_only(request)
    default = request.app[SETTINGS].language.default
    async with request.app[SESSIONMAKER]() as s, s.begin():
        announcement = await _announcement(request, s)
        try:
            count = await announcements.send(s, announcement, user, _footers(request), default)
        except announcements.AnnouncementError as exc:
            raise web.HTTPConflict(text=str(exc)) from None
        target = f"announcement:{announcement.id}"
        await staff.audit(s, user, "announcement_sent", target, {"recipients": count})
    outbox = request.app.get(OUTBOX)
    if outbox is not None:
        outbox.notify()
    raise web.HTTPSeeOther(f"/console/announcements/{announcement.id}")
