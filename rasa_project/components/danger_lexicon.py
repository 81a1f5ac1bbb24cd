"""Danger lexicon: forces the emergency intent when a message names a danger.

A classifier can be unsure about "sy dikunci di kamar gk boleh keluar"; a missed
emergency is the worst error this assistant can make, so any pattern of
`data/danger_lexicon.yml` overrides the predicted intent (also `nlu_fallback`).
The patterns are read at training time and stored in the model, so the model is
self-contained; the lexicon file is part of the model's input hash.
"""

from __future__ import annotations

import logging
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

from rasa_project.components.lexicon import compile_lexicon, find_danger

logger = logging.getLogger(__name__)
FILE = "danger_lexicon.json"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class DangerLexicon(GraphComponent, IntentClassifier):
    """Overrides the intent with `report_emergency` when a danger pattern matches."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {"lexicon_path": "data/danger_lexicon.yml", "intent": "report_emergency"}

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        lexicon: dict[str, Any] | None = None,
    ) -> None:
        self._config = config
        self._storage = model_storage
        self._resource = resource
        self._lexicon = lexicon or {}
        self._patterns, self._exclude = compile_lexicon(self._lexicon)

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> DangerLexicon:
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        path = Path(self._config["lexicon_path"])
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        self._lexicon = {"patterns": raw.get("patterns") or [], "exclude": raw.get("exclude") or []}
        self._patterns, self._exclude = compile_lexicon(self._lexicon)  # fails on a bad regex
        with self._storage.write_to(self._resource) as directory:
            dump_obj_as_json_to_file(directory / FILE, self._lexicon)
        return self._resource

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> DangerLexicon:
        with model_storage.read_from(resource) as directory:
            lexicon = read_json_file(directory / FILE)
        return cls(config, model_storage, resource, lexicon)

    def process(self, messages: list[Message]) -> list[Message]:
        intent_name = self._config["intent"]
        for message in messages:
            text = message.get(TEXT)
            if not text or text.startswith("/"):
                continue  # button payloads carry their own intent
            if find_danger(text, self._patterns, self._exclude) is None:
                continue
            forced = {INTENT_NAME_KEY: intent_name, PREDICTED_CONFIDENCE_KEY: 1.0}
            ranking = [
                r
                for r in message.get(INTENT_RANKING_KEY) or []
                if r.get(INTENT_NAME_KEY) != intent_name
            ]
            message.set(INTENT, forced, add_to_output=True)
            message.set(INTENT_RANKING_KEY, [forced, *ranking], add_to_output=True)
        return messages
