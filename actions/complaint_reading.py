"""What a complaint message is: its text and intent, and the messages a complaint starts from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rasa_sdk import Tracker

from actions.db import intake
from actions.forms import text_of


@dataclass(frozen=True)
class Turn:
    text: str
    intent: str | None
    confidence: float

    @classmethod
    def of(cls, tracker: Tracker) -> Turn:
        message = tracker.latest_message or {}
        intent = message.get("intent") or {}
        text = text_of(message.get("text"))
        return cls(
            "" if text.startswith("/") else text,
            intent.get("name"),
            intent.get("confidence") or 0.0,
        )


def told_before(tracker: Tracker, turn: Turn) -> list[str]:
    """The messages a complaint starts from: this one, and the one before it when that one
    told the problem ("gaji 3 bulan gk dibayar, sy di kuching" answered with the rights,
    then "mau lapor"; or the message the danger question was about, then "tidak")."""
    texts = [turn.text]
    users = []
    for event in reversed(tracker.events):
        if event.get("event") == "session_started":
            break  # not from an earlier conversation
        if event.get("event") == "user":
            users.append(event)
    if len(users) >= 2:
        before = text_of(users[1].get("text"))
        reader = intake()
        told = reader.category_of(before) is not None and not reader.words.is_question(before)
        if before and not before.startswith("/") and told:
            texts.append(before)
    return texts


def code_of(country: Any) -> str | None:
    return country if isinstance(country, str) and len(country) == 2 and country.isupper() else None


def retries(tracker: Tracker, slot: str) -> int:
    """How many answers to `slot` were refused so far (slot `complaint_retries`)."""
    value = tracker.get_slot("complaint_retries") or ""
    name, _, count = str(value).partition(":")
    return int(count) if name == slot and count.isdigit() else 0


def retried(tracker: Tracker, slot: str) -> dict[str, Any]:
    return {"complaint_retries": f"{slot}:{retries(tracker, slot) + 1}"}
