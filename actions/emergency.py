"""Emergencies: contacts at once, an urgent case at once, then the few questions that matter.

Every answer is written to the case as soon as it is given, so the officers have it
even if the worker cannot reply again.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from actions.content import language_of
from actions.db import sessions
from actions.forms import (
    entity,
    hotline_of,
    is_skip,
    message_id,
    parse_country,
    parse_phone,
    route,
    text_of,
)
from actions.forms import yes_no as parse_yes_no
from pmi.cases import EMERGENCY, add_event, create_case, queue_alert, update_case
from pmi.models import Case, CaseStatus, Priority

DETAIL_SLOTS = ("form_country", "location", "safe_to_reply", "phone")
OPEN = (CaseStatus.NEW, CaseStatus.ACKNOWLEDGED, CaseStatus.IN_PROGRESS)
MAX_LOCATION = 500


async def _open_case(s: AsyncSession, tracker: Tracker) -> Case | None:
    reference = tracker.get_slot("emergency_case")
    if not reference:
        return None
    return await s.scalar(
        select(Case).where(
            Case.reference == reference,
            Case.conversation_id == tracker.sender_id,
            Case.status.in_(OPEN),
        )
    )


def _known_country(tracker: Tracker) -> str | None:
    found = entity(tracker, "country")
    return (found or tracker.get_slot("country") or tracker.get_slot("form_country")) or None


class ActionEmergency(Action):
    def name(self) -> str:
        return "action_emergency"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        """Show emergency contacts and open (or add to) an urgent case immediately."""
        country = _known_country(tracker)
        message = text_of((tracker.latest_message or {}).get("text"))
        origin = message_id(tracker)
        async with sessions()() as s, s.begin():
            case = await _open_case(s, tracker)
            if case is None:
                mission = route(country)
                case = await create_case(
                    s,
                    conversation_id=tracker.sender_id,
                    category=EMERGENCY,
                    mission=mission,
                    priority=Priority.URGENT,
                    language=language_of(tracker.slots),
                    country=country,
                    description=message or None,
                    origin_message_id=origin,
                )
            else:
                mission = route(case.country, case.city)
                if origin is None or case.origin_message_id != origin:  # not a turn run again
                    await add_event(s, case, "message", {"text": message})
                    await queue_alert(s, case, case.mission_code, "repeat")
            reference = case.reference
        name, hotline = hotline_of(mission)
        dispatcher.utter_message(
            response="utter_emergency_contacts", mission=name, hotline=hotline, reference=reference
        )
        events = [SlotSet("emergency_case", reference)]
        events += [SlotSet(slot, None) for slot in DETAIL_SLOTS[1:]]
        events.append(SlotSet("form_country", country))
        return events


class ValidateEmergencyForm(FormValidationAction):
    def name(self) -> str:
        return "validate_emergency_form"

    async def _save(self, tracker: Tracker, **changes: Any) -> Case | None:
        async with sessions()() as s, s.begin():
            case = await _open_case(s, tracker)
            if case is not None:
                await update_case(s, case, **changes)
            return case

    async def validate_form_country(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """Route the case to the country's mission and show that mission's contacts."""
        country = parse_country(value, tracker)
        if country is None:
            dispatcher.utter_message(response="utter_invalid_country")
            return {"form_country": None}
        mission = route(country)
        async with sessions()() as s, s.begin():
            case = await _open_case(s, tracker)
            if case is not None and (case.country != country or case.mission_code != mission.code):
                moved = case.mission_code != mission.code
                await update_case(s, case, country=country, mission_code=mission.code)
                if moved:
                    await queue_alert(s, case, mission.code, "rerouted")
                    name, hotline = hotline_of(mission)
                    dispatcher.utter_message(
                        response="utter_emergency_contacts",
                        mission=name,
                        hotline=hotline,
                        reference=case.reference,
                    )
        return {"form_country": country}

    async def validate_location(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = text_of(value)[:MAX_LOCATION]
        if not text:
            return {"location": None}
        await self._save(tracker, location=text)
        return {"location": text}

    async def validate_safe_to_reply(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        answer = parse_yes_no(value)
        if answer is None:
            dispatcher.utter_message(response="utter_invalid_consent")
            return {"safe_to_reply": None}
        await self._save(tracker, safe_to_reply=answer)
        return {"safe_to_reply": answer}

    async def validate_phone(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if is_skip(value):
            return {"phone": "-"}
        phone = parse_phone(value)
        if phone is None:
            dispatcher.utter_message(response="utter_invalid_phone")
            return {"phone": None}
        await self._save(tracker, phone=phone, contact_method="phone")
        return {"phone": phone}


class ActionEmergencyDone(Action):
    def name(self) -> str:
        return "action_emergency_done"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        """Confirm to the worker which mission has their details."""
        async with sessions()() as s:
            case = await _open_case(s, tracker)
        if case is not None:
            mission = route(case.country, case.city)
            dispatcher.utter_message(
                response="utter_emergency_done", mission=mission.name, reference=case.reference
            )
        return [SlotSet(slot, None) for slot in DETAIL_SLOTS[1:]]
