"""Emergencies: contacts at once, an urgent case at once, then the few questions that matter.

The first reply uses what the message itself said (a country, a city or an area) for the
contacts and the mission. Every later question is optional and any answer is accepted:
never an error message to a person in danger. Each answer is written to the case as soon
as it is given, so the officers have it even if the worker cannot reply again. When she
says it is not safe to write to her chat, the contact is marked unsafe (`pmi.safety`) and
she is asked for a safe way to be reached instead of a phone number.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy.ext.asyncio import AsyncSession

from actions.content import language_of
from actions.db import contacts, missions, sessions
from actions.forms import entity, is_skip, message_id, parse_country, parse_phone, text_of
from actions.forms import yes_no as parse_yes_no
from pmi import safety
from pmi.cases import (
    EMERGENCY,
    add_event,
    contact_for_conversation,
    create_case,
    open_case_of_conversation,
    queue_alert,
    update_case,
)
from pmi.missions import Mission
from pmi.models import Case, CaseStatus, Priority
from pmi.places import Place

DETAIL_SLOTS = ("form_country", "location", "safe_to_reply", "phone", "safe_contact")
OPEN = (CaseStatus.NEW, CaseStatus.ACKNOWLEDGED, CaseStatus.IN_PROGRESS)
MAX_TEXT = 500
SKIPPED = "-"
UNKNOWN = "unknown"  # an answer to "is it safe?" that is neither yes nor no: treated as no
NO_WAY = "none"


async def open_case(s: AsyncSession, tracker: Tracker) -> Case | None:
    """The worker's emergency case of this conversation, if still open."""
    reference = tracker.get_slot("emergency_case")
    if not reference:
        return None
    return await open_case_of_conversation(s, reference, tracker.sender_id, OPEN)


def known_country(tracker: Tracker) -> str | None:
    """The country named in this message, else the one the conversation already knows."""
    for value in (
        entity(tracker, "country"),
        tracker.get_slot("country"),
        tracker.get_slot("form_country"),
    ):
        if value and value != SKIPPED:
            return value
    return None


def where_from(tracker: Tracker) -> tuple[str, str | None, Place | None]:
    """The message's own words (not a button's payload), the country and the place they or
    the conversation name."""
    text = text_of((tracker.latest_message or {}).get("text"))
    words = "" if text.startswith("/") else text
    country = known_country(tracker)
    place = missions().locate(words, country)
    return words, country or (place.country if place else None), place


async def new_urgent_case(
    s: AsyncSession,
    tracker: Tracker,
    category: str,
    mission: Mission,
    country: str | None,
    place: Place | None,
) -> Case:
    """An urgent case from this message (create_case alerts the mission at once)."""
    words, _, _ = where_from(tracker)
    return await create_case(
        s,
        conversation_id=tracker.sender_id,
        category=category,
        mission=mission,
        priority=Priority.URGENT,
        language=language_of(tracker.slots),
        country=country,
        city=place.label if place else None,
        description=words or None,
        origin_message_id=message_id(tracker),
    )


async def add_to_case(s: AsyncSession, case: Case, tracker: Tracker, event: dict) -> None:
    """A new message on an open urgent case: on the timeline, and the mission alerted again
    (not when Rasa runs the same turn again)."""
    origin = message_id(tracker)
    if origin is None or case.origin_message_id != origin:
        await add_event(s, case, "message", event)
        await queue_alert(s, case, case.mission_code, "repeat")


def _route(country: str | None, place: str | None) -> Mission:
    code = country if country and len(country) == 2 and country.isupper() else None
    return missions().route(code, place)


def emergency_contacts(mission: Mission, country: str | None, language: str) -> str:
    return contacts().emergency(mission, country, language)


def case_limit_reached(tracker: Tracker) -> bool:
    """The app says this worker's network opened too many urgent cases (web chat flood)."""
    metadata = (tracker.latest_message or {}).get("metadata") or {}
    return metadata.get("case_limit_reached") is True


class ActionEmergency(Action):
    def name(self) -> str:
        return "action_emergency"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        """Show the contacts for where she is and open (or add to) an urgent case at once."""
        words, country, place = where_from(tracker)
        async with sessions()() as s, s.begin():
            case = await open_case(s, tracker)
            new = case is None
            if case is None and case_limit_reached(tracker):
                return self._contacts_only(dispatcher, tracker, country, words)
            if case is None:
                mission = _route(country, words or None)
                case = await new_urgent_case(s, tracker, EMERGENCY, mission, country, place)
            else:
                if place is not None and not case.city:
                    await update_case(s, case, city=place.label)
                mission = _route(case.country or country, case.city or words or None)
                await add_to_case(s, case, tracker, {"text": words})
            reference, country = case.reference, case.country or country
        dispatcher.utter_message(
            response="utter_emergency_contacts",
            contacts=emergency_contacts(mission, country, language_of(tracker.slots)),
            mission=mission.name,
            reference=reference,
        )
        events: list[EventType] = [SlotSet("emergency_case", reference)]
        if new:
            events += [SlotSet(slot, None) for slot in DETAIL_SLOTS]
        if country:
            events.append(SlotSet("form_country", country))
        if place is not None:
            events.append(SlotSet("location", place.label))
        return events

    @staticmethod
    def _contacts_only(
        dispatcher: CollectingDispatcher, tracker: Tracker, country: str | None, words: str
    ) -> list[EventType]:
        """Over the urgent-case cap: the contacts, but no case, no alert, no claim of one,
        and no questions whose answers would go nowhere (the form is not started)."""
        mission = _route(country, words or None)
        language = language_of(tracker.slots)
        dispatcher.utter_message(
            response="utter_emergency_contacts_only",
            contacts=emergency_contacts(mission, country, language),
        )
        return [*(SlotSet(slot, None) for slot in DETAIL_SLOTS), FollowupAction("action_listen")]


class ValidateEmergencyForm(FormValidationAction):
    def name(self) -> str:
        return "validate_emergency_form"

    async def required_slots(
        self,
        domain_slots: list[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> list[str]:
        """A phone number when the chat is safe, else a safe way to be reached."""
        slots = ["form_country", "location", "safe_to_reply"]
        safe = tracker.get_slot("safe_to_reply")
        if safe == "yes":
            slots.append("phone")
        elif safe is not None:
            slots.append("safe_contact")
        return slots

    async def get_validation_events(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        """Nothing of the message that opened the form is an answer to its questions."""
        if tracker.get_slot("requested_slot") is None:
            return []
        return await super().get_validation_events(dispatcher, tracker, domain)

    async def _save(self, tracker: Tracker, **changes: Any) -> Case | None:
        async with sessions()() as s, s.begin():
            case = await open_case(s, tracker)
            if case is not None:
                await update_case(s, case, **changes)
            return case

    async def validate_form_country(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """Route the case to the country's mission; show its contacts if it moved."""
        text = text_of(value)
        country = parse_country(value, tracker)
        place = missions().locate(text) if country is None else None
        if place is not None:
            country = place.country
        if country is None:
            return {"form_country": SKIPPED}  # any answer is accepted
        async with sessions()() as s, s.begin():
            case = await open_case(s, tracker)
            if case is None:
                return {"form_country": country}
            mission = _route(country, place.label if place else case.city)
            moved = case.mission_code != mission.code
            changes: dict[str, Any] = {"country": country, "mission_code": mission.code}
            if place is not None and not case.city:
                changes["city"] = place.label
            await update_case(s, case, **changes)
            if moved:
                await queue_alert(s, case, mission.code, "rerouted")
            reference = case.reference
        if moved:
            dispatcher.utter_message(
                response="utter_emergency_contacts",
                contacts=emergency_contacts(mission, country, language_of(tracker.slots)),
                mission=mission.name,
                reference=reference,
            )
        slots: dict[str, Any] = {"form_country": country}
        if place is not None:
            slots["location"] = place.label
        return slots

    async def validate_location(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """Keep where she is; a known place also routes the case to its consulate."""
        text = text_of(value)[:MAX_TEXT]
        if not text or is_skip(text):
            return {"location": SKIPPED}
        country = tracker.get_slot("form_country")
        country = country if country and country != SKIPPED else None
        async with sessions()() as s, s.begin():
            case = await open_case(s, tracker)
            if case is None:
                return {"location": text}
            place = missions().locate(text, country or case.country)
            changes: dict[str, Any] = {"location": text}
            if place is not None:
                changes["city"] = place.label
                changes["country"] = case.country or place.country
            mission = _route(changes.get("country") or case.country, text)
            moved = mission.code != case.mission_code
            if moved:
                changes["mission_code"] = mission.code
            await update_case(s, case, **changes)
            if moved:
                await queue_alert(s, case, mission.code, "rerouted")
            reference, country = case.reference, case.country
        if moved:
            dispatcher.utter_message(
                response="utter_emergency_contacts",
                contacts=emergency_contacts(mission, country, language_of(tracker.slots)),
                mission=mission.name,
                reference=reference,
            )
        return {"location": text}

    async def validate_safe_to_reply(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """Yes, no, or anything else (taken as not safe: the careful reading)."""
        answer = parse_yes_no(value) or UNKNOWN
        async with sessions()() as s, s.begin():
            case = await open_case(s, tracker)
            if case is not None:
                await update_case(s, case, safe_to_reply=answer)
            if answer != "yes":
                contact = await contact_for_conversation(s, tracker.sender_id)
                if contact is not None:
                    await safety.mark_unsafe(s, contact)
        if answer != "yes":
            dispatcher.utter_message(response="utter_unsafe_noted")
        return {"safe_to_reply": answer}

    async def validate_phone(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = text_of(value)
        if not text or is_skip(text):
            return {"phone": SKIPPED}
        phone = parse_phone(text)
        if phone is None:  # not a number: kept for the officer as she wrote it
            await self._save(tracker, safe_contact=text[:MAX_TEXT])
            return {"phone": SKIPPED}
        await self._save(tracker, phone=phone, contact_method="phone")
        return {"phone": phone}

    async def validate_safe_contact(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """Any answer; "none" tells the officer to wait until she writes."""
        text = text_of(value)[:MAX_TEXT]
        answer = NO_WAY if not text or is_skip(text) else text
        changes: dict[str, Any] = {"safe_contact": answer}
        phone = parse_phone(text) if answer != NO_WAY else None
        if phone is not None:
            changes.update(phone=phone, contact_method="phone")
        await self._save(tracker, **changes)
        return {"safe_contact": answer}


class ActionEmergencyDone(Action):
    def name(self) -> str:
        return "action_emergency_done"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        """Confirm to the worker which mission has their details."""
        async with sessions()() as s:
            case = await open_case(s, tracker)
        if case is not None:
            mission = missions().by_code.get(case.mission_code) or _route(case.country, case.city)
            dispatcher.utter_message(
                response="utter_emergency_done", mission=mission.name, reference=case.reference
            )
        return [SlotSet(slot, None) for slot in DETAIL_SLOTS[1:]]
