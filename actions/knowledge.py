"""Answers to information questions, read from the sourced knowledge base."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.content import knowledge, language_of
from actions.db import contacts, sessions
from pmi import agencies
from pmi.intake import find_agency
from pmi.labels import normalise

# Topics whose answer depends on the worker's country: without one, ask for it first.
NEEDS_COUNTRY = frozenset({"ask_embassy_contact"})
EMBASSY = "ask_embassy_contact"
AGENCY = "ask_agency_legality"


def _message_agency(tracker: Tracker) -> str | None:
    """The agency named: the model's entity, completed by the "PT …" the text spells out
    when the entity stopped short ("pt cahaya bintang" of "pt cahaya bintang timur itu")."""
    written = find_agency(str((tracker.latest_message or {}).get("text") or ""))
    for entity in (tracker.latest_message or {}).get("entities") or []:
        if entity.get("entity") == "agency" and isinstance(entity.get("value"), str):
            value = entity["value"]
            if written and normalise(written).startswith(normalise(value)):
                value = written
            return value[:200]
    return None


def _message_country(tracker: Tracker) -> str | None:
    for entity in (tracker.latest_message or {}).get("entities") or []:
        if entity.get("entity") == "country" and isinstance(entity.get("value"), str):
            return entity["value"].upper()
    return None


class ActionAnswerKnowledge(Action):
    def name(self) -> str:
        return "action_answer_knowledge"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """Answer the intent (or the topic asked about before) in the worker's language."""
        intent = ((tracker.latest_message or {}).get("intent") or {}).get("name")
        language = language_of(tracker.slots)
        country = _message_country(tracker) or tracker.get_slot("country")
        topic = intent
        if intent == "inform":
            # A bare answer: continue the topic we asked about. Otherwise a bare agency
            # name asks whether it is licensed, and a bare country asks for that country's
            # mission (e.g. after an emergency reply).
            topic = tracker.get_slot("pending_topic")
            if topic is None and _message_agency(tracker):
                topic = AGENCY
            elif topic is None and country:
                topic = EMBASSY
            if topic is None:
                dispatcher.utter_message(response="utter_help")
                return []
        return await answer_topic(dispatcher, tracker, topic, country, language)


def is_topic(intent: str | None) -> bool:
    """Whether the knowledge base answers this intent."""
    return bool(intent) and intent in knowledge().entries


async def answer_topic(
    dispatcher: CollectingDispatcher,
    tracker: Tracker,
    topic: str | None,
    country: str | None,
    language: str,
) -> list[dict[str, Any]]:
    """Answer one knowledge topic (asking for the country first where the answer needs it)."""
    if topic in NEEDS_COUNTRY and not country:
        dispatcher.utter_message(response="utter_ask_country")
        return [SlotSet("pending_topic", topic)]
    if topic == EMBASSY and country:
        # One source of numbers: the missions directory (data/missions.yml), never a copy.
        directory = contacts().directory(country, language)
        if directory is not None:
            dispatcher.utter_message(text=directory)
            return [SlotSet("pending_topic", None)]
    answer = knowledge().answer(topic, language, country) if topic else None
    if answer is None:
        dispatcher.utter_message(response="utter_no_answer")
    else:
        dispatcher.utter_message(text=answer.text)
    if topic == AGENCY and (agency := _message_agency(tracker)):
        await _check_registry(dispatcher, agency)
    return [SlotSet("pending_topic", None)]


async def _check_registry(dispatcher: CollectingDispatcher, agency: str) -> None:
    """Say whether the agency the worker named is in the imported official registry."""
    async with sessions()() as s:
        found = await agencies.lookup(s, agency)
    if found is None:
        return  # no registry imported: the knowledge answer already says how to check
    date = found.as_of.strftime("%d-%m-%Y")
    if found.listed:
        dispatcher.utter_message(response="utter_agency_listed", agency=found.name, date=date)
    else:
        dispatcher.utter_message(response="utter_agency_not_listed", agency=agency, date=date)
