"""Lazily loaded content shared by the actions (loaded on first use, not at import)."""

from __future__ import annotations

from functools import cache

from pmi.knowledge import KnowledgeBase
from pmi.settings import Settings, load_settings

SUPPORTED = ("id", "en", "ms")


@cache
def settings() -> Settings:
    return load_settings()


@cache
def knowledge() -> KnowledgeBase:
    return KnowledgeBase.load(settings().content.knowledge_dir)


def language_of(slots: dict) -> str:
    lang = slots.get("language")
    return lang if lang in SUPPORTED else "id"
