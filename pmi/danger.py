"""Emergency triage: is a message about danger now, perhaps, or not at all?

The evidence comes from `data/danger_lexicon.yml` (danger and self-harm phrases, the
words that always open the emergency path, context markers such as "kalau" or "film")
and from the NLU classifier's ranking; the decision is the first rule of the lexicon's
`decision.rules` whose conditions hold. Nothing here is a hidden rule: the code only
computes the named features the rules speak of.

Levels: `clear` (the emergency path at once), `self_harm` (the caring reply and a person
now), `possible` (contacts and one question: "are you in danger now?"), `none`.

Pure Python (3.10+, no Rasa or database imports): the Rasa component
`rasa_project.components.danger_triage` applies it inside the NLU pipeline, the app
uses `is_instruction` for messages that never reach Rasa (a conversation a person has
taken over), and the tests and `make eval-emergency` call it directly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CLEAR, SELF_HARM, POSSIBLE, NONE = "clear", "self_harm", "possible", "none"
LEVELS = (CLEAR, SELF_HARM, POSSIBLE, NONE)
EMERGENCY_INTENT = "report_emergency"
SELF_HARM_INTENT = "report_self_harm"
POSSIBLE_INTENT = "possible_danger"
DANGER_INTENTS = frozenset({EMERGENCY_INTENT, SELF_HARM_INTENT, POSSIBLE_INTENT})
CONTEXTS = (
    "hypothetical",
    "question",
    "past",
    "resolved",
    "someone_else",
    "media",
    "quarantine",
    "hearsay",
    "present",
)
# Features a rule may name besides the contexts (see `Evidence.features`).
FEATURES = frozenset(
    {
        "instruction",
        "help_call",
        "menu",
        "excluded",
        "danger_words",
        "self_harm_words",
        "classifier_clear",
        "classifier_possible",
        "classifier_self_harm",
        "classifier_self_harm_possible",
        "short",
        *CONTEXTS,
    }
)
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


class LexiconError(ValueError):
    """The lexicon file is malformed (a bad regex, an unknown feature in a rule)."""


def _alternation(patterns: Iterable[str]) -> re.Pattern[str] | None:
    parts = [rf"\b(?:{p})\b" for p in patterns if p]
    if not parts:
        return None
    try:
        return re.compile("|".join(parts), re.IGNORECASE)
    except re.error as exc:
        raise LexiconError(f"bad pattern in the danger lexicon: {exc}") from exc


def _patterns(items: Iterable[Mapping[str, Any]] | None, raw: bool | None = None) -> list[str]:
    """The patterns of a lexicon section; `raw` picks those marked `before_exclude` (True),
    the others (False), or all (None)."""
    return [
        str(item["pattern"])
        for item in items or ()
        if item.get("pattern") and (raw is None or bool(item.get("before_exclude")) == raw)
    ]


_REPEATS = re.compile(r"(.)\1{2,}")


def _words(text: str) -> list[str]:
    """Lowercase words, letters repeated three times or more kept once ("tolonggg")."""
    return [_REPEATS.sub(r"\1", w.lower()) for w in _WORD.findall(text)]


@dataclass(frozen=True)
class Rule:
    name: str
    when: frozenset[str]
    unless: frozenset[str]
    level: str
    intent: str | None = None  # the reading to answer when the classifier has none (level none)

    def holds(self, features: frozenset[str]) -> bool:
        return self.when <= features and not (self.unless & features)


@dataclass(frozen=True)
class Evidence:
    """What the lexicon and the classifier say about one message."""

    danger: str | None = None  # the first danger phrase found
    self_harm: str | None = None  # the first self-harm phrase found
    instruction: bool = False  # only words that always open the path ("darurat", "SOS")
    help_call: bool = False  # only a bare cry for help ("tolong saya", "help me")
    menu: bool = False  # only a word asking for the menu ("help", "bantuan")
    excluded: bool = False  # an idiom or object phrase explains an alarming word ("hp mati")
    short: bool = False
    contexts: frozenset[str] = frozenset()
    classifier_intent: str | None = None
    classifier_confidence: float = 0.0
    classifier_features: frozenset[str] = frozenset()
    danger_score: float = 0.0  # the classifier's highest confidence in a danger intent

    @property
    def features(self) -> frozenset[str]:
        found = set(self.contexts) | set(self.classifier_features)
        for name, present in (
            ("danger_words", self.danger),
            ("self_harm_words", self.self_harm),
            ("instruction", self.instruction),
            ("help_call", self.help_call),
            ("menu", self.menu),
            ("excluded", self.excluded),
            ("short", self.short),
        ):
            if present:
                found.add(name)
        return frozenset(found)


@dataclass(frozen=True)
class Decision:
    level: str
    rule: str
    evidence: Evidence = field(default_factory=Evidence)
    intent: str | None = None  # the rule's reading of the message, if it names one

    def as_dict(self) -> dict[str, Any]:
        """The decision as NLU output (`triage` in Rasa's parse data) for actions and logs."""
        e = self.evidence
        return {
            "level": self.level,
            "rule": self.rule,
            "danger_phrase": e.danger,
            "self_harm_phrase": e.self_harm,
            "features": sorted(e.features),
            "classifier_intent": e.classifier_intent,
            "classifier_confidence": round(e.classifier_confidence, 4),
            "danger_score": round(e.danger_score, 4),
        }


class Triage:
    """The lexicon compiled once; `decide` is called for every message."""

    def __init__(self, lexicon: Mapping[str, Any]) -> None:
        self.raw = dict(lexicon)
        self._danger = _alternation(_patterns(lexicon.get("patterns"), raw=False))
        # Matched before `exclude` removes anything: a phrase whose evidence is a part that
        # alone would be excused ("visa habis" is an expired visa, unless the passport is held).
        self._danger_raw = _alternation(_patterns(lexicon.get("patterns"), raw=True))
        self._self_harm = _alternation(_patterns(lexicon.get("self_harm")))
        self._exclude = _alternation(_patterns(lexicon.get("exclude")))
        self._instruction = {w.lower() for w in lexicon.get("instruction_words") or ()}
        self._help = {w.lower() for w in lexicon.get("help_words") or ()}
        self._filler = {w.lower() for w in lexicon.get("filler_words") or ()}
        self._menu = {w.lower() for w in lexicon.get("menu_words") or ()}
        contexts = lexicon.get("context") or {}
        unknown = set(contexts) - set(CONTEXTS)
        if unknown:
            raise LexiconError(f"unknown context(s) in the danger lexicon: {sorted(unknown)}")
        self._contexts = {
            name: _alternation(str(p) for p in contexts.get(name) or ()) for name in CONTEXTS
        }
        decision = lexicon.get("decision") or {}
        self.short_words = int(decision.get("short_words", 5))
        classifier = decision.get("classifier") or {}
        self.clear_confidence = float(classifier.get("clear", 0.85))
        self.possible_confidence = float(classifier.get("possible", 0.3))
        self.self_harm_possible = float(classifier.get("self_harm_possible", 0.15))
        self.rules = [self._rule(raw) for raw in decision.get("rules") or ()]
        if not self.rules:
            raise LexiconError("the danger lexicon has no decision rules")

    @classmethod
    def load(cls, path: Path) -> Triage:
        return cls(yaml.safe_load(path.read_text(encoding="utf-8")) or {})

    @staticmethod
    def _rule(raw: Mapping[str, Any]) -> Rule:
        when = frozenset(raw.get("when") or ())
        unless = frozenset(raw.get("unless") or ())
        level = raw.get("level")
        unknown = (when | unless) - FEATURES
        if unknown or level not in LEVELS:
            raise LexiconError(f"rule {raw.get('name')!r}: unknown {sorted(unknown) or level}")
        intent = raw.get("intent")
        return Rule(str(raw.get("name") or level), when, unless, str(level), intent)

    def _clean(self, text: str) -> str:
        text = text.lower().strip().rstrip(" .!?,")
        return self._exclude.sub(" ", text) if self._exclude is not None else text

    def only_words(self, text: str) -> tuple[bool, bool, bool]:
        """(instruction, help_call, menu): the message is nothing but such words and fillers."""
        written = _words(self._clean(text))
        content = {w for w in written if w not in self._filler}
        if content & self._instruction and content <= self._instruction | self._help:
            return True, False, False
        if len(written) == 1 and written[0] in self._menu:
            return False, False, True  # "help" alone asks for the menu, as the bot says
        return False, bool(content) and content <= self._help, False

    def is_instruction(self, text: str) -> bool:
        """Whether the message is a word that always opens the emergency path."""
        return self.only_words(text)[0]

    def _classifier(
        self, ranking: Sequence[tuple[str, float]]
    ) -> tuple[str | None, float, set[str], float]:
        found: set[str] = set()
        top, confidence = (ranking[0][0], ranking[0][1]) if ranking else (None, 0.0)
        scores = dict(ranking)
        danger = scores.get(EMERGENCY_INTENT, 0.0)
        harm = scores.get(SELF_HARM_INTENT, 0.0)
        if top == EMERGENCY_INTENT and confidence >= self.clear_confidence:
            found.add("classifier_clear")
        if top == SELF_HARM_INTENT and confidence >= self.clear_confidence:
            found.add("classifier_self_harm")
        if harm >= self.self_harm_possible:
            found.add("classifier_self_harm_possible")
        score = max(danger, harm, scores.get(POSSIBLE_INTENT, 0.0))
        if score >= self.possible_confidence:
            found.add("classifier_possible")
        return top, confidence, found, score

    def evidence(self, text: str, ranking: Sequence[tuple[str, float]] = ()) -> Evidence:
        lowered = text.lower()
        excluded = bool(self._exclude and self._exclude.search(lowered))
        cleaned = self._clean(text)
        danger = self._danger.search(cleaned) if self._danger else None
        if danger is None and self._danger_raw is not None:
            danger = self._danger_raw.search(lowered)
        harm = self._self_harm.search(cleaned) if self._self_harm else None
        instruction, help_call, menu = self.only_words(text)
        contexts = frozenset(
            name for name, pattern in self._contexts.items() if pattern and pattern.search(cleaned)
        )
        if "?" in text:
            contexts |= {"question"}
        top, confidence, classifier, score = self._classifier(ranking)
        return Evidence(
            danger=danger.group(0) if danger else None,
            self_harm=harm.group(0) if harm else None,
            instruction=instruction,
            help_call=help_call,
            menu=menu,
            excluded=excluded,
            short=len(_words(text)) <= self.short_words,
            contexts=contexts,
            classifier_intent=top,
            classifier_confidence=confidence,
            classifier_features=frozenset(classifier),
            danger_score=score,
        )

    def decide(self, text: str, ranking: Sequence[tuple[str, float]] = ()) -> Decision:
        """The level of one message from its text and the classifier's (intent, confidence)."""
        evidence = self.evidence(text, ranking)
        features = evidence.features
        for rule in self.rules:
            if rule.holds(features):
                return Decision(rule.level, rule.name, evidence, rule.intent)
        return Decision(NONE, "no rule matched", evidence)

    def lexicon_override(self, text: str, ranking: Sequence[tuple[str, float]] = ()) -> bool:
        """The design this triage replaced: any danger phrase, or the classifier's top intent
        being the emergency, opened an urgent case (kept to compare in `make eval-emergency`)."""
        cleaned = self._clean(text)
        phrase = any(p is not None and p.search(cleaned) for p in (self._danger, self._self_harm))
        phrase = phrase or bool(self._danger_raw and self._danger_raw.search(text.lower()))
        top = ranking[0][0] if ranking else None
        return bool(phrase) or top in (EMERGENCY_INTENT, SELF_HARM_INTENT)
