"""Short answers: a message that is exactly a word the bot asked for means its intent.

A classifier trained on whole sentences is unsure of one-word answers ("ya" ends many
questions), so a worker who typed "ya" where a button says "Ya", or "petugas" where the
bot said `ketik "petugas"`, could get the fallback. The words are the yes/no lists of
`data/case_labels.yml` (the lists the form actions check) and the `typed` lists of
`data/commands.yml`, read at training time into the model. Only a message that is exactly
one of them (case, spaces and final punctuation aside) is set; button payloads are left
alone, and the emergency triage that follows still has the last word.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.constants import (
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from rasa.shared.utils.io import dump_obj_as_json_to_file, read_json_file

FILE = "short_answers.json"
LISTS = {"yes_words": "affirm", "no_words": "deny"}
_PUNCTUATION = re.compile(r"[\s.!?,]+$")


def _read(path: str) -> dict[str, Any]:
    return yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}


def normalise(text: str) -> str:
    return " ".join(_PUNCTUATION.sub("", text.strip().lower()).split())


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class ShortAnswers(GraphComponent, IntentClassifier):
    """Sets affirm / deny for a message that is exactly a yes or no word."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {"labels_path": "data/case_labels.yml", "commands_path": "data/commands.yml"}

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        answers: dict[str, str] | None = None,
    ) -> None:
        self._config = config
        self._storage = model_storage
        self._resource = resource
        self._answers = answers or {}

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> ShortAnswers:
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        labels = _read(self._config["labels_path"])
        typed = _read(self._config["commands_path"]).get("typed") or {}
        known = set(training_data.intents)
        pairs = [(w, intent) for key, intent in LISTS.items() for w in labels.get(key) or []]
        pairs += [(w, intent) for intent, words in typed.items() for w in words or []]
        self._answers = {}
        for word, intent in pairs:
            if intent not in known:
                raise ValueError(f"short answer {word!r}: unknown intent {intent!r}")
            if normalise(str(word)):
                self._answers[normalise(str(word))] = intent
        with self._storage.write_to(self._resource) as directory:
            dump_obj_as_json_to_file(directory / FILE, self._answers)
        return self._resource

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> ShortAnswers:
        with model_storage.read_from(resource) as directory:
            answers = read_json_file(directory / FILE)
        return cls(config, model_storage, resource, answers)

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            text = message.get(TEXT)
            if not text or text.startswith("/"):
                continue
            intent = self._answers.get(normalise(text))
            if intent is None:
                continue
            chosen = {INTENT_NAME_KEY: intent, PREDICTED_CONFIDENCE_KEY: 1.0}
            rest = [
                r for r in message.get(INTENT_RANKING_KEY) or [] if r.get(INTENT_NAME_KEY) != intent
            ]
            message.set(INTENT, chosen, add_to_output=True)
            message.set(INTENT_RANKING_KEY, [chosen, *rest], add_to_output=True)
        return messages
