"""The end of the complaint form (file the case, keep the report for later, or drop it), and
its one question that needs code: confirming a city."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.content import language_of
from actions.db import country_names, intake, labels, sessions
from actions.forms import hotline_of, message_id, route
from pmi.cases import CONSENT_VERSION, create_case

FORM_SLOTS = (
    "problem",
    "form_country",
    "city",
    "employer",
    "complaint_agency",
    "description",
    "contact_method",
    "phone",
    "consent",
)
STATE_SLOTS = (
    "complaint_resume",
    "complaint_pause",
    "city_confirm",
    "city_pending",
    "complaint_summary",
    "complaint_retries",
)
SKIPPED = "-"
SUMMARY_STORY = 160  # characters of the story shown in the summary
SUMMARY_FIELDS = ("problem", "form_country", "city", "employer", "complaint_agency", "description")


def reset_form() -> list[EventType]:
    return [SlotSet(slot, None) for slot in (*FORM_SLOTS, *STATE_SLOTS)]


def has_draft(tracker: Tracker) -> bool:
    """A report begun and neither filed nor dropped (its answers are still in the slots)."""
    return tracker.get_slot("consent") is None and any(
        tracker.get_slot(s) is not None for s in FORM_SLOTS if s != "consent"
    )


def _optional(value: str | None) -> str | None:
    return None if value in (None, SKIPPED) else value


def _shown(tracker: Tracker, field: str, language: str) -> str:
    value = tracker.get_slot(field)
    if value in (None, SKIPPED):
        return "-"
    if field == "problem":
        return labels().label("category", value, language)
    if field == "form_country":
        return country_names().name_of(value, language) or value
    if field == "description" and len(value) > SUMMARY_STORY:
        return value[: SUMMARY_STORY - 1].rstrip() + "…"
    return str(value)


def summary(tracker: Tracker, language: str) -> str:
    """The report as it will be sent, one field per line (shown before consent)."""
    words = intake().words
    lines = [
        f"{words.field_label(f, language)}: {_shown(tracker, f, language)}" for f in SUMMARY_FIELDS
    ]
    method = tracker.get_slot("contact_method")
    how = words.field_label("contact_method", language)
    if method == "phone" and _optional(tracker.get_slot("phone")):
        lines.append(f"{how}: {tracker.get_slot('phone')}")
    elif method:
        lines.append(f"{how}: {'this chat' if language == 'en' else 'chat ini'}")
    return "\n".join(lines)


class ActionSubmitComplaint(Action):
    def name(self) -> str:
        return "action_submit_complaint"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        """File the case if the worker consented; keep it for later; or give the hotlines."""
        slot = tracker.get_slot
        if slot("complaint_resume") == "cancel":
            dispatcher.utter_message(response="utter_cancelled")
            return reset_form()
        if slot("complaint_resume") == "later" or slot("complaint_pause") == "human":
            dispatcher.utter_message(response="utter_complaint_saved")
            kept = [SlotSet(s, None) for s in STATE_SLOTS]
            if slot("complaint_pause") == "human":
                return [*kept, FollowupAction("action_request_human")]
            return kept
        country, city = slot("form_country"), _optional(slot("city"))
        mission = route(country, city)
        name, hotline = hotline_of(mission)
        if slot("consent") != "yes":
            dispatcher.utter_message(
                response="utter_complaint_no_consent", mission=name, hotline=hotline
            )
            return reset_form()
        async with sessions()() as s, s.begin():
            case = await create_case(
                s,
                conversation_id=tracker.sender_id,
                category=slot("problem") or "other",
                mission=mission,
                language=language_of(tracker.slots),
                consent_version=CONSENT_VERSION,
                country=country,
                city=city,
                employer=_optional(slot("employer")),
                agency=_optional(slot("complaint_agency")),
                description=slot("description"),
                contact_method=slot("contact_method"),
                phone=_optional(slot("phone")),
                origin_message_id=message_id(tracker),
            )
            reference = case.reference
        dispatcher.utter_message(
            response="utter_complaint_filed",
            reference=reference,
            mission=mission.name,
            hotline=hotline,
        )
        return reset_form()


class ActionResetComplaint(Action):
    def name(self) -> str:
        return "action_reset_complaint"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        """Stop the form without filing anything."""
        dispatcher.utter_message(response="utter_cancelled")
        return reset_form()


class ActionAskCityConfirm(Action):
    def name(self) -> str:
        return "action_ask_city_confirm"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        """ "Maksud Anda Kuching, Sarawak?" for a city not recognised exactly."""
        label = (tracker.get_slot("city_pending") or "").split("|", 1)[0]
        dispatcher.utter_message(response="utter_ask_city_confirm", place=label)
        return []
