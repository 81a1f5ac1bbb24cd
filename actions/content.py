"""Settings and knowledge base of the running action server, and the worker's language."""

from __future__ import annotations

from actions.db import current
from pmi.knowledge import KnowledgeBase
from pmi.settings import Settings


def settings() -> Settings:
    return current().settings


def knowledge() -> KnowledgeBase:
    return current().knowledge


def supported_languages() -> tuple[str, ...]:
    """The languages of config.yml, in its order."""
    return tuple(settings().language.supported)


def language_of(slots: dict) -> str:
    """The worker's language from the slots; the configured default if unset or unknown."""
    lang = slots.get("language")
    language = settings().language
    return lang if lang in language.supported else language.default
