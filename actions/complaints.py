"""Complaint intake: the form's answer checks, filing the case, cancelling."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.content import language_of
from actions.db import labels, sessions
from actions.forms import (
    MAX_SHORT,
    hotline_of,
    is_skip,
    message_id,
    parse_country,
    parse_phone,
    route,
    text_of,
    yes_no,
)
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
SKIPPED = "-"
MIN_DESCRIPTION = 10
MAX_DESCRIPTION = 4000


def reset_form() -> list[dict[str, Any]]:
    return [SlotSet(slot, None) for slot in FORM_SLOTS]


def _optional(value: str | None) -> str | None:
    return None if value in (None, SKIPPED) else value


class ValidateComplaintForm(FormValidationAction):
    def name(self) -> str:
        return "validate_complaint_form"

    async def required_slots(
        self,
        domain_slots: list[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> list[str]:
        """Ask for a phone number only when the worker wants to be called."""
        slots = [s for s in domain_slots if s != "phone"]
        if tracker.get_slot("contact_method") == "phone":
            slots.insert(slots.index("consent"), "phone")
        return slots

    async def extract_form_country(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """Do not ask for the country when the worker already named it."""
        if tracker.get_slot("form_country") is None and tracker.get_slot("country"):
            return {"form_country": tracker.get_slot("country")}
        return {}

    def validate_problem(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = text_of(value)
        category = labels().category(text)
        if category is None and len(text.split()) >= 3:
            category = "other"  # a described problem that fits no category
        if category is None:
            dispatcher.utter_message(response="utter_invalid_problem")
        return {"problem": category}

    def validate_form_country(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        country = parse_country(value, tracker)
        if country is None:
            dispatcher.utter_message(response="utter_invalid_country")
        return {"form_country": country}

    def validate_city(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = text_of(value)
        if is_skip(text):
            return {"city": SKIPPED}
        if not text or len(text) > MAX_SHORT or text.isdigit():
            dispatcher.utter_message(response="utter_invalid_city")
            return {"city": None}
        return {"city": text}

    def validate_employer(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = text_of(value)
        return {"employer": SKIPPED if is_skip(text) or not text else text[:200]}

    def validate_complaint_agency(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = text_of(value)
        return {"complaint_agency": SKIPPED if is_skip(text) or not text else text[:200]}

    def validate_description(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = text_of(value)
        if len(text) < MIN_DESCRIPTION or len(text.split()) < 2:
            dispatcher.utter_message(response="utter_invalid_description")
            return {"description": None}
        return {"description": text[:MAX_DESCRIPTION]}

    def validate_contact_method(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = text_of(value)
        phone = parse_phone(text)
        if phone:
            return {"contact_method": "phone", "phone": phone}
        if labels().is_word("chat_words", text):
            return {"contact_method": "chat"}
        if labels().is_word("phone_words", text):
            return {"contact_method": "phone"}
        dispatcher.utter_message(response="utter_invalid_contact_method")
        return {"contact_method": None}

    def validate_phone(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if is_skip(value):
            return {"phone": SKIPPED, "contact_method": "chat"}
        phone = parse_phone(value)
        if phone is None:
            dispatcher.utter_message(response="utter_invalid_phone")
        return {"phone": phone}

    def validate_consent(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        answer = yes_no(value)
        if answer is None:
            dispatcher.utter_message(response="utter_invalid_consent")
        return {"consent": answer}


class ActionSubmitComplaint(Action):
    def name(self) -> str:
        return "action_submit_complaint"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        """File the case if the worker consented; otherwise give the hotlines only."""
        slot = tracker.get_slot
        country, city = slot("form_country"), _optional(slot("city"))
        mission = route(country, city)
        _, hotline = hotline_of(mission)
        if slot("consent") != "yes":
            name, number = hotline_of(mission)
            dispatcher.utter_message(
                response="utter_complaint_no_consent", mission=name, hotline=number
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
