"""The app's own Rasa input channel: idempotent turns that report what NLU understood.

The app relays every worker message here (`POST /webhooks/relay/webhook`) with the
stored inbound message's id in `metadata.message_id`. Unlike Rasa's REST channel:

- **Idempotent.** If the tracker already holds a user message with that id (the app
  died after Rasa answered but before it recorded the answer), the turn is not run
  again: the replies that followed it are returned with `"replayed": true`.
- **All or nothing.** If a custom action cannot be run (the action server is down or
  failing), Rasa 3.6 would log it, drop the action's events and answer without it. Here
  the turn is abandoned instead: nothing is saved to the tracker and the channel answers
  503 if the action server could not be reached (the app retries the same message later
  and the worker gets the whole answer), or 500 if the action itself failed (it raised):
  the app retries that message a few times with backoff, then hands it to a person.
  Rasa has no documented hook for either half (seeing the failure, holding back the
  save): `rasa_internals.py` holds that use of Rasa's internals, pinned by a contract test.
- **Finishes what it starts.** A turn runs to its end even if the app disconnects, so it
  is saved and a retry replays it.
- **Reports NLU.** The answer carries the intent and its confidence for the transcript.
- **Erases.** `POST /webhooks/relay/erase` (`{"sender": ...}`) deletes a conversation from
  the tracker store and `POST /webhooks/relay/prune` (`{"before": unix time}`) the events
  older than the retention period (`erasure.py`): Rasa's own API cannot delete.
- **Closed.** Every request but the health check needs `Authorization: Bearer <token>`
  (the `token` of this channel in credentials.yml, from the environment); Rasa's HTTP API
  and its plain REST channel are not enabled in production.

Response of a turn: `{"replies": [...], "intent": str | null, "confidence": float | null,
"replayed": bool}`. `GET /webhooks/relay/` answers 200 once the model is loaded, else 503.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from rasa.shared.core.events import BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from rasa_project.channels.erasure import erase_conversation, prune_before
from rasa_project.channels.rasa_internals import failed_custom_actions, run_prediction_loop

logger = logging.getLogger(__name__)


def _previous_turn(tracker: DialogueStateTracker, message_id: str) -> list[Any] | None:
    """The events that followed an earlier user message with this id, if it was handled.

    The tracker's latest message is the one just logged for this request; it is skipped.
    """
    events = list(tracker.events)
    for index in range(len(events) - 1, -1, -1):
        event = events[index]
        if (
            isinstance(event, UserUttered)
            and event is not tracker.latest_message
            and (event.metadata or {}).get("message_id") == message_id
        ):
            following = []
            for later in events[index + 1 :]:
                if isinstance(later, UserUttered):
                    break
                following.append(later)
            return [event, *following]
    return None


def _bot_messages(events: list[Any]) -> list[dict[str, Any]]:
    messages = []
    for event in events:
        if isinstance(event, BotUttered):
            message: dict[str, Any] = {"text": event.text}
            buttons = (event.data or {}).get("buttons")
            if buttons:
                message["buttons"] = buttons
            messages.append(message)
    return messages


def _nlu(user: UserUttered) -> dict[str, Any]:
    intent = user.intent or {}
    return {"intent": intent.get("name"), "confidence": intent.get("confidence")}


async def _health(request: Request) -> HTTPResponse:
    """200 once the model is loaded, else 503 (open: no token needed)."""
    agent = request.app.ctx.agent
    ready = agent is not None and agent.is_ready()
    return response.json({"status": "ok" if ready else "loading"}, 200 if ready else 503)


async def _erase(request: Request) -> HTTPResponse:
    """Delete one conversation from the tracker store, under its lock."""
    body = request.json if isinstance(request.json, dict) else {}
    sender = body.get("sender")
    agent = request.app.ctx.agent
    if not isinstance(sender, str) or not sender:
        return response.json({"error": "sender"}, 400)
    if agent is None:
        return response.json({"error": "not ready"}, 503)
    async with agent.lock_store.lock(sender):
        erased = await erase_conversation(agent.tracker_store, sender)
    return response.json({"erased": erased})


async def _prune(request: Request) -> HTTPResponse:
    """Delete the events older than `before` (a UNIX time) of every conversation."""
    body = request.json if isinstance(request.json, dict) else {}
    before = body.get("before")
    agent = request.app.ctx.agent
    if not isinstance(before, int | float):
        return response.json({"error": "before"}, 400)
    if agent is None:
        return response.json({"error": "not ready"}, 503)
    return response.json({"pruned": await prune_before(agent.tracker_store, before)})


class RelayInput(InputChannel):
    """Input channel for the app's relay (see the module docstring)."""

    def __init__(self, token: str | None = None) -> None:
        if not token:
            raise ValueError("the relay channel needs a token (credentials.yml: ${RASA_TOKEN})")
        self._token = token

    @classmethod
    def name(cls) -> str:
        return "relay"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> RelayInput:
        return cls((credentials or {}).get("token"))

    def _authorised(self, request: Request) -> bool:
        given = request.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {self._token}".encode())

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        hook = Blueprint("relay_webhook", __name__)

        @hook.middleware("request")
        async def authorise(request: Request) -> HTTPResponse | None:
            if request.method == "GET" and request.path.rstrip("/").endswith("/relay"):
                return None  # the health check
            if not self._authorised(request):
                return response.json({"error": "unauthorised"}, 401)
            return None

        hook.add_route(_health, "/", methods=["GET"])
        hook.add_route(_erase, "/erase", methods=["POST"])
        hook.add_route(_prune, "/prune", methods=["POST"])

        @hook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            body = request.json if isinstance(request.json, dict) else {}
            sender, text = body.get("sender"), body.get("message")
            metadata = body.get("metadata") or {}
            message_id = metadata.get("message_id")
            if not (isinstance(sender, str) and isinstance(text, str) and message_id):
                return response.json({"error": "sender, message, metadata.message_id"}, 400)
            agent = request.app.ctx.agent
            if agent is None or not agent.is_ready():
                return response.json({"error": "model not loaded"}, 503)

            async def locked_turn() -> HTTPResponse:
                async with agent.lock_store.lock(sender):
                    return await self._turn(
                        agent.processor, sender, text, str(message_id), metadata
                    )

            # Shielded: if the app disconnects (it died, or timed out), the turn still
            # finishes and is saved, so the app's retry replays it instead of running the
            # actions (filing a case, say) a second time.
            return await asyncio.shield(asyncio.ensure_future(locked_turn()))

        return hook

    async def _turn(
        self, processor: Any, sender: str, text: str, message_id: str, metadata: dict
    ) -> HTTPResponse:
        collector = CollectingOutputChannel()
        message = UserMessage(text, collector, sender, input_channel=self.name(), metadata=metadata)
        with failed_custom_actions() as failed:
            # processor.handle_message, with the save held back until the turn succeeded.
            # One tracker fetch serves both the replay check and the turn.
            tracker = await processor.log_message(message, should_save_tracker=False)
            previous = _previous_turn(tracker, message_id)
            if previous is not None:  # nothing is saved: the tracker stays as it was
                logger.info("replaying turn of message %s", message_id)
                return response.json(
                    {"replies": _bot_messages(previous), "replayed": True, **_nlu(previous[0])}
                )
            tracker = await processor.run_action_extract_slots(collector, tracker)
            await run_prediction_loop(processor, collector, tracker)
        if failed:
            names = [f.name for f in failed]
            broken = any(f.broken for f in failed)
            logger.warning(
                "turn abandoned: custom action(s) %s: %s",
                "failed" if broken else "unreachable",
                ", ".join(names),
            )
            # 500: this message breaks an action (the app gives up after a few tries);
            # 503: the action server is away (the app waits and retries every message).
            error = "action failed" if broken else "action server unavailable"
            return response.json({"error": error, "actions": names}, 500 if broken else 503)
        await processor.run_anonymization_pipeline(tracker)
        await processor.save_tracker(tracker)
        user = tracker.latest_message
        nlu = _nlu(user) if isinstance(user, UserUttered) else {}
        return response.json({"replies": collector.messages, "replayed": False, **nlu})
