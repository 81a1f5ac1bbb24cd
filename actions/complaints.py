"""Complaint intake: take what the worker already said, ask only what is missing.

Every message of the form is read for every field it contains (pmi/intake.py): the first
one often names the problem, the place and the story at once. An answer is checked for
what it is: a city must be a known place or is confirmed once; a question asked in the
middle is answered and the form offers to go on ("Lanjut laporan?"); "ubah kota" corrects
a field. Choosing "later" (or asking for a person) keeps what was told in the slots, so
"lanjut laporan" continues where she stopped. Filing and its messages are in
actions/complaint_filing.py.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.cases import ActionCaseStatus
from actions.complaint_filing import FORM_SLOTS, SKIPPED, has_draft, summary
from actions.complaint_reading import Turn, code_of, retried, retries, told_before
from actions.content import language_of
from actions.db import intake
from actions.forms import is_skip, parse_phone, text_of, yes_no
from actions.knowledge import answer_topic, is_topic
from pmi.intake import find_agency, looks_like_place

MAX_DESCRIPTION = 4000
MAX_NAME = 200
MIN_CONFIDENCE = 0.5  # below this an intent does not interrupt the form
SHORT_ANSWER = 3  # words: a longer message that asks something is a question, not an answer
ASIDE = frozenset({"check_case_status", "request_human"})  # intents that interrupt without "?"
PAUSE_QUESTION, PAUSE_DRAFT, PAUSE_HUMAN, STALE = "question", "draft", "human", "stale"
PASS = frozenset({"cancel", "report_emergency", "report_self_harm"})  # rules handle these
RESUME, CONFIRM = "complaint_resume", "city_confirm"


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
        """The form's questions in order; a phone only for a call, a pause question first."""
        slot = tracker.get_slot
        if slot(RESUME) in ("later", "cancel") or slot("complaint_pause") == PAUSE_HUMAN:
            return []  # the form ends; action_submit_complaint keeps or drops the draft
        slots = [s for s in domain_slots if s not in ("phone", RESUME, CONFIRM)]
        if slot("contact_method") == "phone":
            slots.insert(slots.index("consent"), "phone")
        if slot("city_pending"):
            slots.insert(slots.index("city"), CONFIRM)
        if slot("complaint_pause") in (PAUSE_QUESTION, PAUSE_DRAFT):
            slots.insert(0, RESUME)
        return slots

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        turn = Turn.of(tracker)
        requested = tracker.get_slot("requested_slot")
        if turn.intent in PASS:
            return []  # nothing extracted: Rasa rejects the form and a rule takes over
        if requested is None:
            return await self._start(dispatcher, tracker, domain, turn)
        if tracker.get_slot("complaint_pause") == STALE:
            return await self._back(dispatcher, tracker, domain, turn, requested)
        if requested != RESUME and (field := intake().words.field_to_change(turn.text)):
            return self._change(requested, field)
        if self._interrupts(turn, requested, tracker):
            return await self._aside(dispatcher, tracker, domain, turn, requested)
        events = self._fill(turn, tracker, skip=requested)
        tracker.add_slots(events)
        return self._with_summary(tracker, events + await super().run(dispatcher, tracker, domain))

    async def _start(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict, turn: Turn
    ) -> list[EventType]:
        """The form opens: continue a saved report, or read the opening message."""
        if has_draft(tracker):
            if turn.intent == "resume_complaint":
                return self._with_summary(tracker, await super().run(dispatcher, tracker, domain))
            return [SlotSet("complaint_pause", PAUSE_DRAFT), SlotSet("requested_slot", RESUME)]
        dispatcher.utter_message(response="utter_complaint_intro")
        events: list[EventType] = []
        for text in told_before(tracker, turn):
            found = self._fill(Turn(text, None, 0.0), tracker, skip=None, opening=True)
            tracker.add_slots(found)
            events += found
        return self._with_summary(tracker, events + await super().run(dispatcher, tracker, domain))

    async def _back(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
        turn: Turn,
        requested: str,
    ) -> list[EventType]:
        """The first message after a break (actions/session.py reopened the form)."""
        if self._answers(turn.text, requested, tracker):
            tracker.slots["complaint_pause"] = None
            events = await self.run(dispatcher, tracker, domain)
            return [SlotSet("complaint_pause", None), *events]
        if self._interrupts(turn, requested, tracker):
            return await self._aside(dispatcher, tracker, domain, turn, requested)
        return [
            SlotSet(requested, None),
            SlotSet("complaint_pause", PAUSE_DRAFT),
            SlotSet("requested_slot", RESUME),
        ]

    def _fill(
        self, turn: Turn, tracker: Tracker, skip: str | None, opening: bool = False
    ) -> list[EventType]:
        """Every still empty field the message contains (never the one being asked)."""
        slot = tracker.get_slot
        known = code_of(slot("form_country")) or code_of(slot("country"))
        reading = intake().read(turn.text, known)
        found: dict[str, Any] = {
            "problem": reading.problem,
            "form_country": reading.country,
            "city": reading.place.name if reading.place else None,
            "complaint_agency": reading.agency,
            "employer": reading.employer,
            "phone": reading.phone,
        }
        if opening:
            found["description"] = reading.story
        if reading.place and slot("form_country") not in (None, reading.place.country):
            found["city"] = None  # a place of another country: asked, not guessed
        if found["phone"] and slot("contact_method") is None:
            found["contact_method"] = "phone"
        return [
            SlotSet(name, value)
            for name, value in found.items()
            if value is not None and name != skip and slot(name) is None
        ]

    def _change(self, requested: str, field: str) -> list[EventType]:
        """ "ubah kota": forget that field (and what depends on it) and ask it again."""
        cleared = {requested: None, field: None, "consent": None, "city_pending": None}
        if field == "form_country":
            cleared["city"] = None
        if field == "contact_method":
            cleared["phone"] = None
        return [SlotSet(k, v) for k, v in cleared.items()] + [SlotSet("requested_slot", field)]

    def _interrupts(self, turn: Turn, requested: str, tracker: Tracker) -> bool:
        """A question or another request instead of an answer to `requested`."""
        topical = is_topic(turn.intent) or turn.intent in ASIDE
        if not turn.text or not topical or turn.confidence < MIN_CONFIDENCE:
            return False
        question = intake().words.is_question(turn.text)
        if self._answers(turn.text, requested, tracker) and not (
            question and len(turn.text.split()) > SHORT_ANSWER
        ):
            return False  # "taiwan?" answers; "berapa biaya ke taiwan?" asks
        return turn.intent in ASIDE or question

    def _answers(self, text: str, requested: str, tracker: Tracker) -> bool:
        reader = intake()
        country = code_of(tracker.get_slot("form_country"))
        checks = {
            "problem": lambda: reader.category_of(text) is not None or text.strip().isdigit(),
            "form_country": lambda: bool(
                reader.country_of(text) or reader.place_of(text, None, fuzzy=True)
            ),
            "city": lambda: reader.place_of(text, country, fuzzy=True) is not None,
            CONFIRM: lambda: reader.words.choice("confirm", text) is not None,
            RESUME: lambda: bool(
                reader.words.choice("resume_question", text)
                or reader.words.choice("resume_draft", text)
            ),
            "contact_method": lambda: bool(
                parse_phone(text) or reader.words.choice("contact_method", text)
            ),
            "phone": lambda: parse_phone(text) is not None,
            "consent": lambda: yes_no(text) is not None,
            "description": lambda: (
                reader.category_of(text) is not None or len(reader.words.content_words(text)) >= 8
            ),
        }
        check = checks.get(requested)
        return bool(check()) if check else False

    async def _aside(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
        turn: Turn,
        requested: str,
    ) -> list[EventType]:
        """Answer what she asked, then offer to go on with the report."""
        keep = [SlotSet(requested, None)]
        if turn.intent == "request_human":
            return [*keep, SlotSet("complaint_pause", PAUSE_HUMAN), SlotSet("requested_slot", None)]
        if turn.intent == "check_case_status":
            await ActionCaseStatus().run(dispatcher, tracker, domain)
        else:
            country = code_of(tracker.get_slot("form_country")) or tracker.get_slot("country")
            await answer_topic(
                dispatcher, tracker, turn.intent, country, language_of(tracker.slots)
            )
        return [
            *keep,
            SlotSet("complaint_pause", PAUSE_QUESTION),
            SlotSet("requested_slot", RESUME),
        ]

    def _with_summary(self, tracker: Tracker, events: list[EventType]) -> list[EventType]:
        """Before the consent question, the summary it shows (a slot the response reads)."""
        asks = [e for e in events if e.get("event") == "slot" and e.get("name") == "requested_slot"]
        if asks and asks[-1].get("value") == "consent":
            probe = tracker.copy()
            probe.add_slots(events)
            events.append(SlotSet("complaint_summary", summary(probe, language_of(probe.slots))))
        return events

    # --- answers, one per question -------------------------------------------------------

    def validate_complaint_resume(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        pause = tracker.get_slot("complaint_pause")
        kind = "resume_draft" if pause == PAUSE_DRAFT else "resume_question"
        option = intake().words.choice(kind, text_of(value))
        if option == "continue":
            return {RESUME: None, "complaint_pause": None}
        if option == "restart":
            return {**dict.fromkeys(FORM_SLOTS), RESUME: None, "complaint_pause": None}
        if option in ("later", "cancel"):
            return {RESUME: option}
        dispatcher.utter_message(response="utter_invalid_resume")
        return {RESUME: None}

    def validate_problem(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text, reader = text_of(value), intake()
        category = reader.labels.category(text)
        if category is None and len(reader.words.content_words(text)) >= 3:
            category = "other"  # a described problem that fits no category
        if category is None and retries(tracker, "problem") >= 1 and text:
            category = "other"  # asked twice: an officer reads the story and sorts it
        if category is None:
            dispatcher.utter_message(response="utter_invalid_problem")
            return {"problem": None, **retried(tracker, "problem")}
        found: dict[str, Any] = {"problem": category}
        story = reader.is_story(text) and not reader.words.is_question(text)
        if tracker.get_slot("description") is None and story:
            found["description"] = text[:MAX_DESCRIPTION]
        return found

    def validate_form_country(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text, reader = text_of(value), intake()
        code = reader.country_of(text)
        place = reader.place_of(text, code, fuzzy=code is None)
        if place is not None:
            city = tracker.get_slot("city") or place.name
            return {"form_country": place.country, "city": city}
        if code:
            return {"form_country": code}
        words = reader.words
        other = words.choice("contact_method", text) or yes_no(text) or is_skip(text)
        if looks_like_place(text) and not other and not words.is_question(text):
            return {"form_country": text[:40]}  # not in the directory: the national crisis centre
        dispatcher.utter_message(response="utter_invalid_country")
        return {"form_country": None}

    def validate_city(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text, reader = text_of(value), intake()
        if is_skip(text) or reader.words.says_unknown(text):
            return {"city": SKIPPED}
        country = code_of(tracker.get_slot("form_country"))
        exact = reader.place_of(text, country)
        if exact is not None:
            return {"city": exact.name}
        close = reader.place_of(text, country, fuzzy=True) or reader.place_of(text, None)
        if close is not None:
            return {"city": None, "city_pending": f"{close.label}|{close.country}|{close.name}"}
        words = reader.words
        other = words.choice("contact_method", text) or yes_no(text) or words.is_question(text)
        if looks_like_place(text) and not other:
            return {"city": None, "city_pending": f"{text[:60]}||{text[:60]}"}
        if retries(tracker, "city") >= 1:
            return {"city": SKIPPED}  # asked twice: go on without it, never stuck
        dispatcher.utter_message(response="utter_invalid_city")
        return {"city": None, **retried(tracker, "city")}

    def validate_city_confirm(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """ "Kuching, Sarawak?": yes takes it (and its country); anything else asks again."""
        label, country, name = (tracker.get_slot("city_pending") or "||").split("|", 2)
        answer = intake().words.choice("confirm", text_of(value))
        cleared = {CONFIRM: None, "city_pending": None}
        if answer == "yes":
            found = {**cleared, "city": name or label}
            if country:
                found["form_country"] = country
            return found
        if answer is None and (retry := self.validate_city(value, dispatcher, tracker, domain)):
            return {**cleared, **retry}  # she wrote another city instead
        return cleared

    def validate_employer(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = text_of(value)
        unknown = is_skip(text) or not text or intake().words.says_unknown(text)
        return {"employer": SKIPPED if unknown else text[:MAX_NAME]}

    def validate_complaint_agency(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = text_of(value)
        found = find_agency(text)
        if not found and (is_skip(text) or not text or intake().words.says_unknown(text)):
            return {"complaint_agency": SKIPPED}
        return {"complaint_agency": (found or text)[:MAX_NAME]}

    def validate_description(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = text_of(value)
        if not intake().has_substance(text):
            dispatcher.utter_message(response="utter_invalid_description")
            return {"description": None}
        return {"description": text[:MAX_DESCRIPTION]}

    def validate_contact_method(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = text_of(value)
        if phone := parse_phone(text):
            return {"contact_method": "phone", "phone": phone}
        option = intake().words.choice("contact_method", text)
        if option is None:
            dispatcher.utter_message(response="utter_invalid_contact_method")
        return {"contact_method": option}

    def validate_phone(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if is_skip(value) or intake().words.choice("contact_method", text_of(value)) == "chat":
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
