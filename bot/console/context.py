"""Content the console renders (labels, replies, missions), loaded at start-up."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from pmi.knowledge import Replies
from pmi.labels import CaseLabels
from pmi.missions import Missions


@dataclass(frozen=True)
class ConsoleContent:
    missions: Missions
    labels: CaseLabels
    replies: Replies
    intents: tuple[str, ...]  # the Rasa domain's intents, for corrections and search


CONTENT = web.AppKey("console_content", ConsoleContent)
