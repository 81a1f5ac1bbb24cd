"""Keep the `language` slot equal to the language the app decided for this message."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.content import supported_languages


class ActionSyncLanguage(Action):
    def name(self) -> str:
        return "action_sync_language"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """Copy the message metadata's language into the slot when it changed."""
        metadata = (tracker.latest_message or {}).get("metadata") or {}
        language = metadata.get("language")
        if language in supported_languages() and language != tracker.get_slot("language"):
            return [SlotSet("language", language)]
        return []
