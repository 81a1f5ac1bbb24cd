"""Bad input at the edges: text cleaned before it is stored, control characters refused.

PostgreSQL text cannot hold NUL (\\x00) and no database driver can encode a lone UTF-16
surrogate (JSON allows "\\ud800"), so either would turn a worker's message or a staff form
into a 500. Workers' messages are cleaned (`clean_text`, used by the relay for every
channel); URLs, query strings and form fields are refused with a 400 when they carry such
characters (`reject_bad_characters`), since no legitimate page or form sends them.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web

# C0 controls except tab, line feed and carriage return; DEL; lone surrogates.
_BAD = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def clean_text(text: str) -> str:
    """The text without NUL, other control characters (except tab and newlines) or surrogates."""
    return _BAD.sub("", text)


def has_bad_characters(values: Iterable[object]) -> bool:
    return any(isinstance(v, str) and _BAD.search(v) for v in values)


def _bad_request(request: web.Request, reason: str) -> web.HTTPBadRequest:
    if request.path.startswith("/api/"):
        return web.HTTPBadRequest(text=f'{{"error": "{reason}"}}', content_type="application/json")
    return web.HTTPBadRequest(text=reason)


@web.middleware
async def reject_bad_characters(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer 400 to a path, query or form field holding control characters or surrogates."""
    reason = "control characters are not allowed in the request"
    try:
        path, query = request.path, request.query
    except UnicodeDecodeError:
        raise _bad_request(request, "the URL is not valid UTF-8") from None
    if has_bad_characters([path, *query.keys(), *query.values()]):
        raise _bad_request(request, reason)
    if request.method == "POST" and request.content_type in _FORM_TYPES:
        try:
            form = await request.post()  # cached: the handler reads the same form
        except ValueError:  # malformed multipart or undecodable body
            raise _bad_request(request, "the form could not be read") from None
        if has_bad_characters([*form.keys(), *form.values()]):
            raise _bad_request(request, reason)
    return await handler(request)
