"""Case status for the worker who filed it (and nobody else)."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.content import language_of
from actions.db import labels, sessions
from actions.forms import entity, text_of
from pmi.cases import cases_of_conversation, normalise_reference

MAX_LISTED = 5


class ActionCaseStatus(Action):
    def name(self) -> str:
        return "action_case_status"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        """List the worker's own cases, or the one they named if it is theirs."""
        text = text_of((tracker.latest_message or {}).get("text"))
        reference = normalise_reference(entity(tracker, "case_id") or "") or normalise_reference(
            text
        )
        async with sessions()() as s:
            cases = list(await cases_of_conversation(s, tracker.sender_id))
        if reference:
            # Someone else's reference gets exactly the answer of an unknown one.
            cases = [c for c in cases if c.reference == reference]
        if not cases:
            dispatcher.utter_message(response="utter_no_cases")
            return []
        language = language_of(tracker.slots)
        words = labels()
        for case in cases[:MAX_LISTED]:
            dispatcher.utter_message(
                response="utter_case_status",
                reference=case.reference,
                category=words.label("category", case.category, language),
                status=words.label("status", case.status, language),
                date=case.created_at.strftime("%d-%m-%Y"),
            )
        return []
