"""Files workers sent (photos, documents, voice notes), shown to staff who may see them.

Operators and admins may open any transcript, so any file. Mission staff see a file
only if its sender has a case routed to their mission: the same conversation they see
on that case's page. Everything else answers 404 and the attempt is logged.
"""

from __future__ import annotations

from aiohttp import web

from bot.console.auth import STAFF_KEY
from bot.console.views import scope
from bot.keys import MEDIA_STORE, SESSIONMAKER
from pmi import cases, staff
from pmi.models import Media

# Types a browser may show inline; anything else is served as a download.
INLINE = {
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/gif",
    "audio/ogg",
    "audio/mpeg",
    "audio/mp4",
    "audio/aac",
    "audio/amr",
    "video/mp4",
    "video/3gpp",
    "application/pdf",
}


async def media_file(request: web.Request) -> web.StreamResponse:
    """Serve one stored file to staff allowed to see it."""
    user = request[STAFF_KEY]
    media_id = int(request.match_info["media_id"])
    async with request.app[SESSIONMAKER]() as s, s.begin():
        media = await s.get(Media, media_id)
        limit = scope(user)
        allowed = media is not None
        if allowed and limit is not None:
            allowed = await cases.mission_has_contact(s, media.contact_id, limit)
        await staff.audit(s, user, "view_media" if allowed else "denied", f"media:{media_id}")
    if media is None or not allowed:
        raise web.HTTPNotFound(text="not found")
    if not media.storage_key:
        raise web.HTTPNotFound(text="the file has not been downloaded")
    path = request.app[MEDIA_STORE].path(media.storage_key)
    if not path.exists():
        raise web.HTTPNotFound(text="the file is no longer kept")
    inline = media.mime_type in INLINE
    disposition = "inline" if inline else "attachment"
    return web.FileResponse(
        path,
        headers={
            "Content-Type": media.mime_type if inline else "application/octet-stream",
            "Content-Disposition": f'{disposition}; filename="pmi-{media.id}"',
        },
    )
