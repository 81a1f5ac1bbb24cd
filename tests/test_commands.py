"""The app's own commands (`bot/commands.py`): /start, /bahasa, /hapus with its confirmation,
/dataku and their phrases, in Indonesian, English and Malay; what /dataku shows."""

from __future__ import annotations

import json

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.commands import (
    CANCEL_DELETE,
    CONFIRM_DELETE,
    CommandReply,
    app_command,
    chosen_language,
    language_buttons,
    my_data_text,
)
from pmi import messages
from pmi.cases import create_case
from pmi.knowledge import Replies
from pmi.missions import Missions
from pmi.models import Contact, Priority
from pmi.privacy import mask_phone
from pmi.settings import load_settings

SETTINGS = load_settings(env={})
REPLIES = Replies.load(SETTINGS.content.replies_file, SETTINGS.language.fallbacks)
SUPPORTED = tuple(SETTINGS.language.supported)
LANGUAGES = ("id", "en", "ms")
Sessions = async_sessionmaker[AsyncSession]


def command(text: str, language: str = "id") -> CommandReply | None:
    return app_command(text, language, REPLIES, SUPPORTED)


def choice(language: str) -> str:
    """What a language button sends."""
    return "/choose_language" + json.dumps({"language": language})


def test_the_configured_languages_are_indonesian_english_and_malay() -> None:
    assert SUPPORTED == LANGUAGES


@pytest.mark.parametrize("language", LANGUAGES)
def test_start_greets_in_the_default_language_with_the_language_buttons(language: str) -> None:
    reply = command("/start", language)
    assert reply is not None and reply.text == REPLIES.get("start", "id")
    assert reply.buttons == language_buttons(SETTINGS.language)
    assert reply.language is None and not reply.forget


@pytest.mark.parametrize("text", ["/bahasa", "/language", "/lang", "/LANG", "/bahasa@pmi_bot"])
def test_the_language_command_offers_every_language(text: str) -> None:
    reply = command(text, "en")
    assert reply is not None and reply.text == REPLIES.get("choose_language", "en")
    payloads = [b["payload"] for b in reply.buttons]
    assert [chosen_language(p, SUPPORTED) for p in payloads] == list(LANGUAGES)


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_language_button_sets_the_language_and_confirms_in_it(language: str) -> None:
    reply = command(choice(language), "id")
    assert reply is not None and reply.language == language
    assert reply.text == REPLIES.get("language_set", language)


def test_the_confirmation_of_a_language_choice_is_in_that_language() -> None:
    texts = {lang: command(choice(lang)) for lang in LANGUAGES}
    assert "English" in texts["en"].text  # type: ignore[union-attr]
    assert "Bahasa Melayu" in texts["ms"].text  # type: ignore[union-attr]
    assert "Bahasa Indonesia" in texts["id"].text  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "text",
    [
        '/choose_language{"language": "fr"}',
        "/choose_language{not json}",
        '/choose_language["en"]',
        "/choose_language",
    ],
)
def test_an_unknown_or_broken_language_choice_goes_to_rasa(text: str) -> None:
    assert chosen_language(text, SUPPORTED) is None
    assert command(text) is None


@pytest.mark.parametrize(
    "text", ["/hapus", "/delete", "/padam", "hapus data saya", "Padam data saya."]
)
@pytest.mark.parametrize("language", LANGUAGES)
def test_delete_asks_for_confirmation_first(text: str, language: str) -> None:
    reply = command(text, language)
    assert reply is not None and reply.confirm == "delete" and not reply.forget
    assert reply.text == REPLIES.get("delete_confirm", language)
    assert reply.buttons == [
        {"title": REPLIES.get("delete_yes", language), "payload": CONFIRM_DELETE},
        {"title": REPLIES.get("delete_no", language), "payload": CANCEL_DELETE},
    ]


def test_the_delete_buttons_speak_the_workers_language() -> None:
    english, indonesian = command("/hapus", "en"), command("/hapus", "id")
    assert english is not None and indonesian is not None
    assert [b["title"] for b in english.buttons] == ["Yes, delete", "No"]
    assert [b["title"] for b in indonesian.buttons] == ["Ya, hapus", "Tidak"]


@pytest.mark.parametrize("language", LANGUAGES)
def test_only_the_confirm_button_erases(language: str) -> None:
    confirmed, cancelled = command(CONFIRM_DELETE, language), command(CANCEL_DELETE, language)
    assert confirmed is not None and confirmed.forget
    assert confirmed.text == REPLIES.get("delete_done", language)
    assert cancelled is not None and not cancelled.forget and cancelled.confirm is None
    assert cancelled.text == REPLIES.get("delete_cancelled", language)


@pytest.mark.parametrize(
    "text", ["/dataku", "/mydata", "/data", "/DATAKU@pmi_bot", "data saya", "my data!", "dataku?"]
)
def test_my_data_is_built_from_the_database(text: str) -> None:
    reply = command(text)
    assert reply is not None and reply.my_data and reply.text == "" and not reply.forget


@pytest.mark.parametrize(
    "text",
    ["halo", "/unknown", "berapa gaji saya", "saya mau hapus data saya nanti", "start", ""],
)
def test_other_messages_go_to_rasa(text: str) -> None:
    assert command(text) is None


def test_announcement_subscriptions_are_commands_too() -> None:
    on = command("/langganan malaysia", "en")
    assert on is not None and on.subscribe is True and on.country == "malaysia"
    assert on.text == REPLIES.get("announcements_on", "en")


async def _contact(s: AsyncSession, channel: str = "telegram") -> Contact:
    contact = await messages.get_or_create_contact(s, channel, "worker-1")
    await messages.set_language(s, contact, "en")
    return contact


async def _my_data(s: AsyncSession, contact: Contact, language: str) -> str:
    return await my_data_text(s, contact, language, REPLIES, SETTINGS.content.case_labels_file)


async def test_my_data_of_a_new_worker_says_nothing_is_stored(sessions: Sessions) -> None:
    async with sessions() as s:
        text = await _my_data(s, await _contact(s, "whatsapp"), "id")
    assert text.splitlines()[0] == REPLIES.get("my_data_header", "id")
    assert "WhatsApp" in text and "English" in text
    assert REPLIES.get("my_data_no_messages", "id") in text
    assert REPLIES.get("my_data_no_cases", "id") in text
    assert text.splitlines()[-1] == REPLIES.get("my_data_footer", "id")


async def test_my_data_lists_counts_and_cases_but_no_free_text(sessions: Sessions) -> None:
    missions = Missions.load(SETTINGS.content.missions_file)
    async with sessions() as s:
        contact = await _contact(s)
        await messages.store_inbound(s, contact, "telegram", "m1", "agen Pak Joko di Medan")
        case = await create_case(
            s,
            conversation_id=contact.public_id,
            category="unpaid_wages",
            mission=missions.default,
            priority=Priority.URGENT,
            description="Pak Joko tahan paspor",
            phone="+62 812 3456 7890",
        )
        text = await _my_data(s, contact, "en")
    assert "Telegram" in text and "1 from you" in text
    assert case.reference in text and "Wages not paid" in text
    assert mask_phone("+62 812 3456 7890") in text and "3456" not in text
    assert REPLIES.get("my_data_vital_interest", "en") in text  # urgent, kept without consent
    assert "Joko" not in text and "Medan" not in text


async def test_my_data_speaks_malay_to_a_malay_reader(sessions: Sessions) -> None:
    async with sessions() as s:
        text = await _my_data(s, await _contact(s), "ms")
    assert text.splitlines()[0] == REPLIES.get("my_data_header", "ms")
    assert "Saluran: Telegram" in text
