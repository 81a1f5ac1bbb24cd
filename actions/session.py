"""A new conversation session (after an hour of silence) keeps a report begun before it.

Rasa's default session start carries the slots over but not the active form, so a worker
who answers "kuching" hours later to the question she was asked would be answered as if
she had said it out of the blue. This session start carries the slots over and, when a
report was left in the middle, opens the form again marked `stale`: her next message is
taken as the answer if it is one, a question is answered, anything else offers to
continue or start over (actions/complaints.py).
"""

from __future__ import annotations

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, ActiveLoop, EventType, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.complaint_filing import has_draft

FORM = "complaint_form"
STALE = "stale"


class ActionSessionStart(Action):
    def name(self) -> str:
        return "action_session_start"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        carried = [
            SlotSet(name, value)
            for name, value in tracker.slots.items()
            if value is not None and name != "session_started_metadata"
        ]
        events: list[EventType] = [SessionStarted(), *carried]
        requested = tracker.get_slot("requested_slot")
        if has_draft(tracker) and requested and tracker.active_loop.get("name") == FORM:
            events += [ActiveLoop(FORM), SlotSet("complaint_pause", STALE)]
        return [*events, ActionExecuted("action_listen")]
