"""Emergency triage inside the NLU pipeline: clear danger, possible danger, or none.

After the classifier and the fallback classifier, each message is judged by
`pmi.danger.Triage` from the danger lexicon (`data/danger_lexicon.yml`: phrases, the
words that always open the path, context markers, the decision rules) and the intent
ranking. The component then sets the intent the dialogue acts on:

- `clear` -> `report_emergency`, `self_harm` -> `report_self_harm`, `possible` ->
  `possible_danger` (the bot shows the contacts and asks whether the worker is in danger);
- `none` -> the classifier's intent, or, if that was one of the three, the best other one.

The decision and its evidence go into the parse data as `triage` (with `intent_if_safe`,
the question the worker asked, answered if she says she is not in danger). The lexicon
is read at training time and stored in the model, so the model is self-contained; the
lexicon file and `pmi/danger.py` are part of the model's input hash.
"""

from __future__ import annotations

import json
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

from pmi.danger import (
    CLEAR,
    DANGER_INTENTS,
    EMERGENCY_INTENT,
    POSSIBLE,
    POSSIBLE_INTENT,
    SELF_HARM,
    SELF_HARM_INTENT,
    Triage,
)

logger = logging.getLogger(__name__)
FILE = "danger_lexicon.json"
FALLBACK = "nlu_fallback"
# A rule that knows what a message asks may overrule these readings: "kalau nanti majikan pukul
# saya, lapor ke mana?" is a question before departure, not a complaint to file now.
OVERRULABLE = {*DANGER_INTENTS, FALLBACK, "file_complaint"}
FORCED = {CLEAR: EMERGENCY_INTENT, SELF_HARM: SELF_HARM_INTENT, POSSIBLE: POSSIBLE_INTENT}


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class DangerTriage(GraphComponent, IntentClassifier):
    """Sets the intent from the triage decision (see the module docstring)."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {"lexicon_path": "data/danger_lexicon.yml"}

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
        self._triage = Triage(lexicon) if lexicon else None

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> DangerTriage:
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        path = Path(self._config["lexicon_path"])
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        lexicon = json.loads(json.dumps(raw, default=str))  # dates (`reviewed`) as text
        self._triage = Triage(lexicon)  # fails on a bad regex or rule
        with self._storage.write_to(self._resource) as directory:
            dump_obj_as_json_to_file(directory / FILE, lexicon)
        return self._resource

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> DangerTriage:
        with model_storage.read_from(resource) as directory:
            lexicon = read_json_file(directory / FILE)
        return cls(config, model_storage, resource, lexicon)

    def process(self, messages: list[Message]) -> list[Message]:
        if self._triage is None:
            return messages
        for message in messages:
            text = message.get(TEXT)
            if not text or text.startswith("/"):
                continue  # button payloads carry their own intent
            self._apply(message, text)
        return messages

    def _apply(self, message: Message, text: str) -> None:
        ranking = [
            r for r in message.get(INTENT_RANKING_KEY) or [] if r.get(INTENT_NAME_KEY) is not None
        ]
        pairs = [(r[INTENT_NAME_KEY], float(r.get(PREDICTED_CONFIDENCE_KEY) or 0)) for r in ranking]
        decision = self._triage.decide(text, pairs)  # type: ignore[union-attr]
        questions = [r for r in ranking if r[INTENT_NAME_KEY] not in DANGER_INTENTS]
        asked = next((r for r in questions if r[INTENT_NAME_KEY] != FALLBACK), None)
        output = decision.as_dict()
        output["intent_if_safe"] = asked[INTENT_NAME_KEY] if asked else None
        output["classifier_ranking"] = [(name, round(conf, 4)) for name, conf in pairs[:5]]
        message.set("triage", output, add_to_output=True)
        forced_name = FORCED.get(decision.level)
        current = (message.get(INTENT) or {}).get(INTENT_NAME_KEY)
        unsure = current in OVERRULABLE
        if forced_name is not None:
            chosen = {INTENT_NAME_KEY: forced_name, PREDICTED_CONFIDENCE_KEY: 1.0}
        elif decision.intent is not None and unsure:
            # A rule that knows what such a message asks ("what do I do if I am hit?").
            chosen = {INTENT_NAME_KEY: decision.intent, PREDICTED_CONFIDENCE_KEY: 1.0}
        elif current in DANGER_INTENTS and questions:
            chosen = dict(questions[0])  # not danger: the best other reading
        else:
            return
        rest = [r for r in ranking if r[INTENT_NAME_KEY] != chosen[INTENT_NAME_KEY]]
        message.set(INTENT, chosen, add_to_output=True)
        message.set(INTENT_RANKING_KEY, [chosen, *rest], add_to_output=True)
