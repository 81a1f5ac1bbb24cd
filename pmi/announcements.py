"""Announcements to workers who asked for them: subscriptions, drafts, preview and sending.

A worker subscribes with `/info` (or "langganan", optionally naming their destination
country) and stops with one word, STOPINFO. Plain "stop"/"berhenti" are not used: they
cancel a form in the middle of a complaint. Sending queues one outbox message per
subscriber with kind "announcement", so the outbox delivers it within channel limits and
the WhatsApp sender can choose a template outside the 24-hour window.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from functools import cache
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pmi import messages
from pmi.countries import CountryNames
from pmi.db import utcnow
from pmi.models import (
    Announcement,
    AnnouncementStatus,
    AnnouncementSubscription,
    Case,
    Contact,
    StaffUser,
)

KIND = "announcement"
SUBSCRIBE = frozenset({"/info", "/langganan", "/subscribe"})
SUBSCRIBE_WORDS = frozenset({"langganan", "langganan info", "subscribe"})  # the whole message
UNSUBSCRIBE = frozenset(
    {"stopinfo", "/stopinfo", "/berhenti", "unsubscribe", "/unsubscribe", "berhenti langganan"}
)
MAX_TEXT = 1000  # WhatsApp template parameters and Telegram both fit this comfortably


class AnnouncementError(ValueError):
    """An announcement was refused; the message says why."""


def parse_command(text: str) -> tuple[bool, str] | None:
    """(True, rest) for a subscription, (False, "") for the stop word, None otherwise."""
    stripped = " ".join(text.strip().lower().split())
    if stripped in UNSUBSCRIBE:
        return False, ""
    if stripped in SUBSCRIBE_WORDS:
        return True, ""
    first, _, rest = stripped.partition(" ")
    if first.split("@", 1)[0] in SUBSCRIBE:
        return True, rest
    return None


@cache
def country_names(path: Path) -> CountryNames:
    """Country names from the NLU synonyms, read once per process."""
    return CountryNames.load(path)


async def set_subscription(
    s: AsyncSession, contact: Contact, on: bool, country_text: str, countries: CountryNames
) -> AnnouncementSubscription | None:
    """Subscribe (country: the one named, else the worker's latest case's) or unsubscribe."""
    current = await s.scalar(
        select(AnnouncementSubscription).where(AnnouncementSubscription.contact_id == contact.id)
    )
    if not on:
        if current is not None:
            await s.delete(current)
        return None
    country = countries.resolve(country_text) if country_text else None
    if country is None:
        country = await s.scalar(
            select(Case.country)
            .where(Case.contact_id == contact.id, Case.country.is_not(None))
            .order_by(Case.id.desc())
            .limit(1)
        )
    if current is None:
        current = AnnouncementSubscription(contact_id=contact.id)
        s.add(current)
    if country is not None and len(country) == 2:
        current.country = country
    await s.flush()
    return current


def clean_texts(texts: dict[str, str], supported: Sequence[str]) -> dict[str, str]:
    """The non-empty texts of supported languages; Indonesian is required."""
    cleaned = {lang: texts.get(lang, "").strip() for lang in supported}
    cleaned = {lang: text for lang, text in cleaned.items() if text}
    if "id" not in cleaned:
        raise AnnouncementError("the Indonesian text is required")
    if any(len(text) > MAX_TEXT for text in cleaned.values()):
        raise AnnouncementError(f"each text must be at most {MAX_TEXT} characters")
    return cleaned


async def create_draft(
    s: AsyncSession,
    texts: dict[str, str],
    country: str | None,
    language: str | None,
    user: StaffUser,
) -> Announcement:
    announcement = Announcement(texts=texts, country=country, language=language, created_by=user.id)
    s.add(announcement)
    await s.flush()
    return announcement


async def recent(s: AsyncSession, limit: int = 100) -> Sequence[Announcement]:
    """The latest announcements, newest first."""
    query = select(Announcement).order_by(Announcement.id.desc()).limit(limit)
    return (await s.scalars(query)).all()


async def audience(
    s: AsyncSession, announcement: Announcement, default_language: str
) -> Sequence[Contact]:
    """The subscribers this announcement goes to."""
    language = func.coalesce(Contact.language, default_language)
    query = select(Contact).join(
        AnnouncementSubscription, AnnouncementSubscription.contact_id == Contact.id
    )
    if announcement.country:
        query = query.where(AnnouncementSubscription.country == announcement.country)
    if announcement.language:
        query = query.where(language == announcement.language)
    query = query.where(Contact.unsafe_since.is_(None))  # not safe to write to: none at all
    return (await s.scalars(query.order_by(Contact.id))).all()


def text_for(announcement: Announcement, language: str | None, footer: str) -> str:
    """The text in the worker's language (Indonesian otherwise), with the stop word."""
    body = announcement.texts.get(language or "id") or announcement.texts["id"]
    return "\n\n".join((body, footer))


async def preview(
    s: AsyncSession, announcement: Announcement, default_language: str
) -> Counter[str]:
    """How many subscribers would receive it, per language."""
    return Counter(
        c.language or default_language for c in await audience(s, announcement, default_language)
    )


async def send(
    s: AsyncSession,
    announcement: Announcement,
    user: StaffUser,
    footers: dict[str, str],
    default_language: str,
) -> int:
    """Queue it for every subscriber, once (a second send is refused); return the count."""
    claimed = await s.execute(
        update(Announcement)
        .where(Announcement.id == announcement.id, Announcement.status == AnnouncementStatus.DRAFT)
        .values(status=AnnouncementStatus.SENT, sent_at=utcnow(), sent_by=user.id)
    )
    if claimed.rowcount != 1:
        raise AnnouncementError("this announcement was already sent")
    contacts = await audience(s, announcement, default_language)
    for contact in contacts:
        language = contact.language or default_language
        text = text_for(announcement, language, footers[language])
        await messages.add_outbound(s, contact.id, text, kind=KIND)
    await s.execute(
        update(Announcement)
        .where(Announcement.id == announcement.id)
        .values(recipients=len(contacts))
    )
    await s.refresh(announcement)
    return len(contacts)
