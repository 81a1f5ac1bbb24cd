"""Commands the app answers itself, on every channel: /start, the language choice, /hapus,
/dataku.

Language choice buttons send `/choose_language{"language": "en"}`; the app records the
choice (explicit choice beats detection) and confirms in the new language.

WhatsApp users cannot easily type slash commands, so the data commands also answer a few
explicit phrases when they are the whole message ("hapus data saya", "data saya"); erasure
still needs the confirmation button.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import yaml
from sqlalchemy.ext.asyncio import AsyncSession

from pmi import announcements
from pmi.knowledge import Replies
from pmi.labels import CaseLabels
from pmi.models import Contact, Priority
from pmi.privacy import data_summary

LANGUAGE_BUTTONS = [
    {"title": "Bahasa Indonesia", "payload": '/choose_language{"language": "id"}'},
    {"title": "English", "payload": '/choose_language{"language": "en"}'},
    {"title": "Bahasa Melayu", "payload": '/choose_language{"language": "ms"}'},
]
_CHOOSE = re.compile(r"^/choose_language(\{.*\})$")
START = {"/start"}
LANGUAGE = {"/bahasa", "/language", "/lang"}
DELETE = {"/hapus", "/delete", "/padam"}
DELETE_PHRASES = {
    "hapus data saya",
    "hapus semua data saya",
    "hapus data",
    "padam data saya",
    "delete my data",
}
MY_DATA = {"/dataku", "/mydata", "/data"}
MY_DATA_PHRASES = {"data saya", "dataku", "lihat data saya", "data apa yang disimpan", "my data"}
CHANNEL_NAMES = {"webchat": "Web chat", "telegram": "Telegram", "whatsapp": "WhatsApp"}
LANGUAGE_NAMES = {"id": "Bahasa Indonesia", "en": "English", "ms": "Bahasa Melayu"}
PHRASE_END = re.compile(r"[\s.!?]+$")
CONFIRM_DELETE = "/confirm_delete"
CANCEL_DELETE = "/cancel_delete"


@dataclass(frozen=True)
class CommandReply:
    text: str
    buttons: list[dict[str, str]]
    language: str | None = None  # set when the worker chose a language
    forget: bool = False  # erase the worker's data before sending this reply
    my_data: bool = False  # the text is built by `my_data_text` (it needs the database)
    subscribe: bool | None = None  # announcements: True subscribes (to `country`), False stops
    country: str = ""
    confirm: str | None = None  # the reply asks a yes/no question the next message may answer


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
    phrase = " ".join(PHRASE_END.sub("", text.strip().lower()).split())
    if command in MY_DATA or phrase in MY_DATA_PHRASES:
        return CommandReply("", [], my_data=True)
    if command in START:
        return CommandReply(replies.get("start", "id"), LANGUAGE_BUTTONS)
    if command in LANGUAGE:
        return CommandReply(replies.get("choose_language", language), LANGUAGE_BUTTONS)
    if command in DELETE or phrase in DELETE_PHRASES:
        buttons = [
            {"title": replies.get("delete_yes", language), "payload": CONFIRM_DELETE},
            {"title": replies.get("delete_no", language), "payload": CANCEL_DELETE},
        ]
        return CommandReply(replies.get("delete_confirm", language), buttons, confirm="delete")
    if command == CONFIRM_DELETE:
        return CommandReply(replies.get("delete_done", language), [], forget=True)
    if command == CANCEL_DELETE:
        return CommandReply(replies.get("delete_cancelled", language), [])
    subscription = announcements.parse_command(text)
    if subscription is not None:
        on, country = subscription
        key = "announcements_on" if on else "announcements_off"
        return CommandReply(replies.get(key, language), [], subscribe=on, country=country)
    chosen = chosen_language(text, supported)
    if chosen:
        return CommandReply(replies.get("language_set", chosen), [], chosen)
    return None


def load_phrases(path: Path, key: str) -> frozenset[str]:
    """A list of whole-message phrases from `data/commands.yml`, normalised as compared."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return frozenset(" ".join(str(p).lower().split()) for p in raw.get(key) or ())


@lru_cache(maxsize=4)
def _labels(path: Path) -> CaseLabels:
    return CaseLabels.load(path)


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "-"


async def my_data_text(
    s: AsyncSession, contact: Contact, language: str, replies: Replies, labels_file: Path
) -> str:
    """What is stored about the worker, in their language; no free text they wrote."""
    summary = await data_summary(s, contact)
    labels = _labels(labels_file)
    lines = [
        replies.get("my_data_header", language),
        replies.get("my_data_contact", language).format(
            channel=CHANNEL_NAMES.get(summary.channel, summary.channel),
            language=LANGUAGE_NAMES.get(summary.language or "", "-"),
            since=_when(summary.since),
        ),
    ]
    if summary.messages_in or summary.messages_out:
        lines.append(
            replies.get("my_data_messages", language).format(
                inbound=summary.messages_in,
                outbound=summary.messages_out,
                first=_when(summary.first_message_at),
            )
        )
    else:
        lines.append(replies.get("my_data_no_messages", language))
    for case in summary.cases:
        lines.append(
            replies.get("my_data_case", language).format(
                reference=case.reference,
                category=labels.label("category", case.category, language),
                status=labels.label("status", case.status, language),
                created=_when(case.created_at),
            )
        )
        if case.phone:
            lines.append(replies.get("my_data_phone", language).format(phone=case.phone))
        if case.consent_version:
            lines.append(
                replies.get("my_data_consent", language).format(
                    version=case.consent_version, at=_when(case.consent_at)
                )
            )
        elif case.priority == Priority.URGENT:
            lines.append(replies.get("my_data_vital_interest", language))
    if not summary.cases:
        lines.append(replies.get("my_data_no_cases", language))
    lines.append(replies.get("my_data_footer", language))
    return "\n".join(lines)
