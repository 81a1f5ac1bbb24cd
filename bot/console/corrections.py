"""Operators mark a worker's message with the intent it really had (for NLU review)."""

from __future__ import annotations

from aiohttp import web

from bot.console.auth import STAFF_KEY
from bot.console.context import CONTENT
from bot.console.views import operator_only
from bot.keys import SESSIONMAKER
from pmi import corrections, messages, staff


async def mark_intent(request: web.Request) -> web.StreamResponse:
    """Record the right intent of one message of this conversation."""
    operator_only(request)
    user = request[STAFF_KEY]
    form = await request.post()
    intent = str(form.get("intent", ""))
    intents = request.app[CONTENT].intents
    if intent not in intents:
        raise web.HTTPBadRequest(text="unknown intent")
    public_id = request.match_info["public_id"]
    async with request.app[SESSIONMAKER]() as s, s.begin():
        message_id = int(request.match_info["message_id"])
        message = await messages.inbound_of_conversation(s, public_id, message_id)
        if message is None:
            raise web.HTTPNotFound(text="message not found")
        correction = await corrections.mark(s, message, intent, user, intents)
        detail = {"message": message.id, "intent": intent, "was": correction.predicted_intent}
        await staff.audit(s, user, "correct_intent", public_id, detail)
    raise web.HTTPSeeOther(f"/console/conversations/{public_id}")
