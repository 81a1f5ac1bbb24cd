"""Hand the conversation to a person on request."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.content import settings
from actions.db import sessions
from pmi.cases import contact_for_conversation
from pmi.db import utcnow
from pmi.handoff import next_opening, start_handoff


class ActionRequestHuman(Action):
    def name(self) -> str:
        return "action_request_human"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        """Stop the bot for this conversation and say when a person will answer."""
        async with sessions()() as s, s.begin():
            contact = await contact_for_conversation(s, tracker.sender_id)
            if contact is not None:
                await start_handoff(s, contact)
        if contact is None:
            # Not a conversation the app relays (e.g. a direct Rasa test): nobody can take it.
            dispatcher.utter_message(response="utter_complaint_channels")
            return []
        hours = settings().handoff
        opens = next_opening(hours, utcnow())
        if opens is None:
            dispatcher.utter_message(response="utter_handoff_started")
        else:
            dispatcher.utter_message(
                response="utter_handoff_after_hours",
                opens=opens.strftime("%d-%m-%Y %H:%M"),
                timezone=hours.timezone,
            )
        return []
