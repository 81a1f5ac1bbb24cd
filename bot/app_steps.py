"""Messages the app answers itself, without Rasa: commands, typed confirmations, files,
"safe again" and an emergency word while a person has the conversation."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.commands import (
    CANCEL_DELETE,
    CONFIRM_DELETE,
    PHRASE_END,
    CommandReply,
    app_command,
    load_phrases,
    my_data_text,
)
from pmi import announcements, messages, safety
from pmi.cases import emergency_in_handoff
from pmi.contacts import ContactSheet
from pmi.db import utcnow
from pmi.knowledge import Replies
from pmi.labels import CaseLabels
from pmi.models import Contact, InboundMessage
from pmi.privacy import forget_contact
from pmi.settings import Settings

MEDIA_ACK = "media_ack"
CONFIRM_WINDOW = timedelta(minutes=15)  # how long "ya" may still answer the app's question


class AppSteps:
    """The replies the relay queues itself, inside its read transaction."""

    def __init__(self, settings: Settings, replies: Replies, contacts: ContactSheet) -> None:
        content = settings.content
        self._settings = settings
        self._replies = replies
        self._contacts = contacts
        self._labels = CaseLabels.load(content.case_labels_file)
        self._safe_words = load_phrases(content.commands_file, "safe_again")

    def command(
        self, contact: Contact, text: str, language: str, supported: tuple[str, ...]
    ) -> CommandReply | None:
        """The app command this message is, if any (a typed "ya" answering /hapus too)."""
        command = app_command(text, language, self._replies, supported)
        if command is None and contact.pending_confirm:
            command = self._typed_answer(contact, text, language)
        return command

    async def answer_command(
        self,
        s: AsyncSession,
        contact: Contact,
        inbound: InboundMessage,
        command: CommandReply,
        language: str,
    ) -> list[str] | None:
        """Reply to a command; returns the erased files' storage keys if it erased her data."""
        inbound_id: int | None = inbound.id
        await messages.mark_inbound_done(s, inbound, command.language or language)
        contact.pending_confirm = command.confirm
        contact.pending_confirm_at = utcnow() if command.confirm else None
        erased: list[str] | None = None
        kind = "reply"
        if command.forget:
            erased = await forget_contact(s, contact)
            inbound_id = None  # the message itself was erased with the rest
            kind = messages.ERASURE_DONE
        if command.language:
            contact.language, contact.language_chosen = command.language, True
        if command.subscribe is not None:
            countries = announcements.country_names(self._settings.content.country_names_file)
            await announcements.set_subscription(
                s, contact, command.subscribe, command.country, countries
            )
        text = command.text
        if command.my_data:
            labels = self._settings.content.case_labels_file
            text = await my_data_text(s, contact, language, self._replies, labels)
        await messages.add_outbound(
            s, contact.id, text, command.buttons, inbound_id=inbound_id, kind=kind
        )
        return erased

    def _typed_answer(self, contact: Contact, text: str, language: str) -> CommandReply | None:
        """ "ya" / "tidak" typed instead of the buttons of a question the app asked (/hapus)."""
        asked = contact.pending_confirm_at
        contact.pending_confirm, contact.pending_confirm_at = None, None
        if asked is None or utcnow() - asked > CONFIRM_WINDOW:
            return None
        if self._labels.is_word("yes_words", text):
            return app_command(CONFIRM_DELETE, language, self._replies, ())
        if self._labels.is_word("no_words", text):
            return app_command(CANCEL_DELETE, language, self._replies, ())
        return None  # something else: the question lapses and the message goes on

    async def acknowledge_media(
        self, s: AsyncSession, contact_id: int, inbound_id: int, kind: str, language: str
    ) -> None:
        """Tell the worker the file was received (a voice note: please also type it)."""
        text = self._replies.get(f"{kind}_received", language)
        await messages.add_outbound(s, contact_id, text, kind=MEDIA_ACK, inbound_id=inbound_id)

    def is_safe_again(self, text: str) -> bool:
        """ "aman" / "safe" / "selamat": the worker says her chat may be written to again."""
        phrase = " ".join(PHRASE_END.sub("", text.strip().lower()).split())
        return phrase in self._safe_words

    async def mark_safe(
        self, s: AsyncSession, contact: Contact, inbound: InboundMessage, language: str
    ) -> None:
        """The worker says her chat is safe again: held messages may go."""
        await safety.mark_safe(s, contact)
        await messages.mark_inbound_done(s, inbound, language)
        text = self._replies.get("safe_again", language)
        await messages.add_outbound(s, contact.id, text, inbound_id=inbound.id)

    async def handoff_emergency(
        self, s: AsyncSession, contact: Contact, inbound: InboundMessage, language: str
    ) -> None:
        """Alert the staff now (an urgent case) and give the worker the contacts."""
        case, mission = await emergency_in_handoff(
            s, contact, self._contacts.missions, str(inbound.id), inbound.text
        )
        block = self._contacts.emergency(mission, case.country, language)
        text = self._replies.get("handoff_emergency", language).format(contacts=block)
        await messages.add_outbound(s, contact.id, text, inbound_id=inbound.id)
