"""The bot's actions, with `action_case_status` replaced by one that always raises.

An action server started with `--actions tests.poison_actions` serves every real action
(imported below) and this broken one: rasa-sdk registers subclasses after their parents,
so the raising class takes the name. Used by `tests/test_failed_turns_e2e.py` only.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

import actions
from actions.cases import ActionCaseStatus

for module in pkgutil.iter_modules(actions.__path__):
    importlib.import_module(f"actions.{module.name}")


class ActionCaseStatusRaises(ActionCaseStatus):
    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        raise RuntimeError("this action always fails (a test of poison messages)")
