"""What the console shares: content it renders (loaded at start-up), its keys, password checks."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from bot.console.passwords import PasswordChecker
from pmi.canned import CannedReplies
from pmi.console_keys import ConsoleKeys
from pmi.deadlines import Clock
from pmi.knowledge import Replies
from pmi.labels import CaseLabels
from pmi.missions import Missions
from pmi.outcomes import Outcomes
from pmi.referrals import ReferralBodies


@dataclass(frozen=True)
class ConsoleContent:
    missions: Missions
    labels: CaseLabels
    replies: Replies
    intents: tuple[str, ...]  # the Rasa domain's intents, for corrections and search
    outcomes: Outcomes  # how a case may end (closing requires one)
    referrals: ReferralBodies  # domestic authorities a case may be referred to
    canned: CannedReplies  # replies staff pick, in the worker's language


CONTENT = web.AppKey("console_content", ConsoleContent)
KEYS = web.AppKey("console_keys", ConsoleKeys)
PASSWORDS = web.AppKey("password_checker", PasswordChecker)
CLOCK = web.AppKey("console_clock", Clock)  # deadlines and overdue marks; tests move it
