"""Possible danger and self-harm: ask before alarming anyone; care first, and a person now.

`possible_danger` (set by the triage in the NLU pipeline): the contacts for the worker's
country and one question, "Apakah Anda dalam bahaya sekarang?". No case and no alert
unless she says yes (the button opens the emergency path); if she says no, the question
she actually asked is answered. The console flags such conversations (the intent is on
the transcript).

`report_self_harm`: a short, warm reply with crisis lines for her country and Indonesia,
the offer of a person in this chat, and an urgent case so that staff are alerted now.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.content import language_of
from actions.db import contacts, missions, sessions
from actions.emergency import (
    add_to_case,
    case_limit_reached,
    emergency_contacts,
    known_country,
    new_urgent_case,
    open_case,
    where_from,
)
from actions.forms import text_of
from actions.knowledge import answer_topic, is_topic
from pmi.cases import SELF_HARM

# What to do after "no, I am not in danger" for a question that is not a knowledge topic.
FOLLOW_UPS = {
    "check_case_status": "action_case_status",
    "request_human": "action_request_human",
}
COMPLAINT = "file_complaint"


def _triage(tracker: Tracker) -> dict[str, Any]:
    return (tracker.latest_message or {}).get("triage") or {}


class ActionDangerCheck(Action):
    def name(self) -> str:
        return "action_danger_check"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        """Give the contacts for her country and ask whether she is in danger now."""
        text = text_of((tracker.latest_message or {}).get("text"))
        country = known_country(tracker)
        place = missions().locate(text, country)
        country = country or (place.country if place else None)
        mission = missions().route(country, text)
        dispatcher.utter_message(
            response="utter_danger_check",
            contacts=emergency_contacts(mission, country, language_of(tracker.slots)),
        )
        return [SlotSet("danger_question", _triage(tracker).get("intent_if_safe"))]


class ActionDangerCleared(Action):
    def name(self) -> str:
        return "action_danger_cleared"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        """She is not in danger: say how to come back, then answer what she asked."""
        topic = tracker.get_slot("danger_question")
        language = language_of(tracker.slots)
        dispatcher.utter_message(response="utter_danger_cleared")
        events: list[EventType] = [SlotSet("danger_question", None)]
        if is_topic(topic):
            country = tracker.get_slot("country")
            return events + await answer_topic(dispatcher, tracker, topic, country, language)
        if topic == COMPLAINT:  # the form says its intro and reads the message she wrote
            return [*events, FollowupAction("complaint_form")]
        if topic in FOLLOW_UPS:
            return [*events, FollowupAction(FOLLOW_UPS[topic])]
        return events


class ActionSelfHarm(Action):
    def name(self) -> str:
        return "action_self_harm"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        """Care, crisis lines, the offer of a person; staff alerted through an urgent case."""
        words, country, place = where_from(tracker)
        lines = contacts().crisis(country, language_of(tracker.slots))
        async with sessions()() as s, s.begin():
            case = await open_case(s, tracker)
            if case is None and case_limit_reached(tracker):
                # Over the urgent-case cap: the crisis lines, but no case, so no alert (and
                # not utter_self_harm, which says the officers were told).
                dispatcher.utter_message(text=lines)
                return []
            if case is None:
                mission = missions().route(country, words or None)
                case = await new_urgent_case(s, tracker, SELF_HARM, mission, country, place)
            else:
                await add_to_case(s, case, tracker, {"text": words, "self_harm": True})
            reference = case.reference
        dispatcher.utter_message(response="utter_self_harm", lines=lines)
        return [SlotSet("emergency_case", reference)]
