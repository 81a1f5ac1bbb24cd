"""Commands the app answers itself, on every channel: /start, the language choice, /hapus,
/dataku.

Language choice buttons send `/choose_language{"language": "en"}`; the app records the
choice (explicit choice beats detection) and confirms in the new language.

WhatsApp users cannot easily type slash commands, so the data commands also answer a few
explicit phrases when they are the whole message ("hapus data saya", "data saya"); erasure
still needs the confirmation button. The commands and phrases are data/app_commands.yml's,
the languages and their names config.yml's.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.ext.asyncio import AsyncSession

from pmi import announcements
from pmi.knowledge import ContentError, Replies
from pmi.labels import CaseLabels
from pmi.models import Contact, Priority
from pmi.privacy import data_summary
from pmi.settings import ROOT, LanguageSettings, configured_languages

COMMANDS_FILE = ROOT / "data" / "app_commands.yml"
COMMAND_KINDS = ("start", "language", "delete", "my_data")
PHRASE_KINDS = ("delete", "my_data")
_CHOOSE = re.compile(r"^/choose_language(\{.*\})$")
PHRASE_END = re.compile(r"[\s.!?]+$")
CONFIRM_DELETE = "/confirm_delete"
CANCEL_DELETE = "/cancel_delete"


@dataclass(frozen=True)
class CommandWords:
    """The words of data/app_commands.yml, normalised as messages are compared."""

    commands: dict[str, frozenset[str]]  # kind -> slash commands
    phrases: dict[str, frozenset[str]]  # kind -> whole-message phrases
    channel_names: dict[str, str]


def _word_lists(raw: Any, kinds: tuple[str, ...], where: str) -> dict[str, frozenset[str]]:
    if not isinstance(raw, dict) or set(raw) != set(kinds):
        raise ContentError(f"{where}: expected the lists {', '.join(kinds)}")
    lists = {}
    for kind in kinds:
        words = raw[kind]
        if not isinstance(words, list) or not words or not all(isinstance(w, str) for w in words):
            raise ContentError(f"{where}.{kind}: expected a list of texts (quote yes/no/on/off)")
        lists[kind] = frozenset(" ".join(w.lower().split()) for w in words)
    return lists


def load_command_words(path: Path) -> CommandWords:
    """Read and check the command words; ContentError says what is wrong with the file."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(raw, dict) or raw.get("version") != 1:
        raise ContentError(f"{path}: expected a mapping with version: 1")
    commands = _word_lists(raw.get("commands"), COMMAND_KINDS, f"{path}: commands")
    for kind, words in commands.items():
        if not all(w.startswith("/") and " " not in w for w in words):
            raise ContentError(f"{path}: commands.{kind}: a command is one word starting with /")
    names = raw.get("channel_names")
    if not isinstance(names, dict) or not all(isinstance(v, str) for v in names.values()):
        raise ContentError(f"{path}: channel_names must map channels to names")
    return CommandWords(
        commands,
        _word_lists(raw.get("phrases"), PHRASE_KINDS, f"{path}: phrases"),
        {str(k): v for k, v in names.items()},
    )


@cache
def command_words(path: Path = COMMANDS_FILE) -> CommandWords:
    """The command words, read once per process."""
    return load_command_words(path)


def language_buttons(languages: LanguageSettings) -> list[dict[str, str]]:
    """One button per configured language, titled with its name."""
    return [
        {"title": spec.name, "payload": "/choose_language" + json.dumps({"language": spec.code})}
        for spec in languages.languages
    ]


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
    text: str,
    language: str,
    replies: Replies,
    supported: tuple[str, ...],
    *,
    words: CommandWords | None = None,
    languages: LanguageSettings | None = None,
) -> CommandReply | None:
    """The app's own answer to a command, or None if the message is for Rasa.

    `words` and `languages` default to data/app_commands.yml and config.yml.
    """
    words = words or command_words()
    command = text.strip().split("@", 1)[0].split(" ", 1)[0].lower()
    phrase = " ".join(PHRASE_END.sub("", text.strip().lower()).split())
    commands, phrases = words.commands, words.phrases
    if command in commands["my_data"] or phrase in phrases["my_data"]:
        return CommandReply("", [], my_data=True)
    if command in commands["start"]:  # greets a newcomer in the default language
        languages = languages or configured_languages()
        return CommandReply(replies.get("start", languages.default), language_buttons(languages))
    if command in commands["language"]:
        buttons = language_buttons(languages or configured_languages())
        return CommandReply(replies.get("choose_language", language), buttons)
    if command in commands["delete"] or phrase in phrases["delete"]:
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
    s: AsyncSession,
    contact: Contact,
    language: str,
    replies: Replies,
    labels_file: Path,
    *,
    words: CommandWords | None = None,
    languages: LanguageSettings | None = None,
) -> str:
    """What is stored about the worker, in their language; no free text they wrote."""
    summary = await data_summary(s, contact)
    labels = _labels(labels_file)
    channels = (words or command_words()).channel_names
    names = (languages or configured_languages()).names
    lines = [
        replies.get("my_data_header", language),
        replies.get("my_data_contact", language).format(
            channel=channels.get(summary.channel, summary.channel),
            language=names.get(summary.language or "", "-"),
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
