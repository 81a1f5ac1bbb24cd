"""Commands the app answers itself, on every channel: /start, the language choice, /hapus.

Language choice buttons send `/choose_language{"language": "en"}`; the app records the
choice (explicit choice beats detection) and confirms in the new language.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from pmi.knowledge import Replies

LANGUAGE_BUTTONS = [
    {"title": "Bahasa Indonesia", "payload": '/choose_language{"language": "id"}'},
    {"title": "English", "payload": '/choose_language{"language": "en"}'},
    {"title": "Bahasa Melayu", "payload": '/choose_language{"language": "ms"}'},
]
_CHOOSE = re.compile(r"^/choose_language(\{.*\})$")
START = {"/start"}
LANGUAGE = {"/bahasa", "/language", "/lang"}
DELETE = {"/hapus", "/delete", "/padam"}
CONFIRM_DELETE = "/confirm_delete"
CANCEL_DELETE = "/cancel_delete"


@dataclass(frozen=True)
class CommandReply:
    text: str
    buttons: list[dict[str, str]]
    language: str | None = None  # set when the worker chose a language
    forget: bool = False  # erase the worker's data before sending this reply


def chosen_language(text: str, supported: tuple[str, ...]) -> str | None:
    match = _CHOOSE.match(text.strip())
    if not match:
        return None
    try:
        value = json.loads(match.group(1)).get("language")
    except (json.JSONDecodeError, AttributeError):
        return None
    return value if value in supported else None


def app_command(
    text: str, language: str, replies: Replies, supported: tuple[str, ...]
) -> CommandReply | None:
    """The app's own answer to a command, or None if the message is for Rasa."""
    command = text.strip().split("@", 1)[0].split(" ", 1)[0].lower()
    if command in START:
        return CommandReply(replies.get("start", "id"), LANGUAGE_BUTTONS)
    if command in LANGUAGE:
        return CommandReply(replies.get("choose_language", language), LANGUAGE_BUTTONS)
    if command in DELETE:
        buttons = [
            {"title": replies.get("delete_yes", language), "payload": CONFIRM_DELETE},
            {"title": replies.get("delete_no", language), "payload": CANCEL_DELETE},
        ]
        return CommandReply(replies.get("delete_confirm", language), buttons)
    if command == CONFIRM_DELETE:
        return CommandReply(replies.get("delete_done", language), [], forget=True)
    if command == CANCEL_DELETE:
        return CommandReply(replies.get("delete_cancelled", language), [])
    chosen = chosen_language(text, supported)
    if chosen:
        return CommandReply(replies.get("language_set", chosen), [], chosen)
    return None
