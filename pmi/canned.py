"""Canned replies (data/canned_replies.yml): the officer picks one, fills the blanks, edits.

The text comes in the worker's language (with the configured fallbacks), so an officer who
writes Indonesian answers a worker who chose English or Malay in her own words. `{reference}`
and `{mission}` are filled in here; `[blanks]` are the officer's, and a message that still
holds one of a template's blanks is refused rather than sent half-written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from pmi.settings import Fallbacks, configured_languages

BLANK = re.compile(r"\[[^\[\]\n]{1,80}\]")


@dataclass(frozen=True)
class CannedReply:
    id: str
    title: str  # what the officer sees in the menu
    texts: dict[str, str]  # language -> text


class CannedReplies:
    def __init__(self, replies: list[CannedReply], fallbacks: Fallbacks | None = None) -> None:
        self.replies = {r.id: r for r in replies}
        self.fallbacks = fallbacks
        self.blanks = frozenset(
            b for r in replies for t in r.texts.values() for b in BLANK.findall(t)
        )

    @classmethod
    def load(cls, path: Path, fallbacks: Fallbacks | None = None) -> CannedReplies:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        replies = []
        for item in data["replies"]:
            texts = {str(k): str(v).strip() for k, v in item["text"].items()}
            if "id" not in texts:
                raise ValueError(f"{path}: reply {item['id']!r} needs an Indonesian text")
            replies.append(CannedReply(str(item["id"]), str(item["title"]), texts))
        return cls(replies, fallbacks)

    def render(self, reply_id: str, language: str, reference: str, mission: str) -> str | None:
        """The reply in `language` (or its fallback), with the case's reference and mission."""
        reply = self.replies.get(reply_id)
        if reply is None:
            return None
        order = (self.fallbacks or configured_languages().fallbacks).of(language)
        text = next((reply.texts[lang] for lang in order if lang in reply.texts), reply.texts["id"])
        return text.replace("{reference}", reference).replace("{mission}", mission)

    def unfilled(self, text: str) -> list[str]:
        """The templates' blanks still in `text` (an officer's own brackets are allowed)."""
        return [b for b in BLANK.findall(text) if b in self.blanks]
