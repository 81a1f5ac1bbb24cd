"""Compare NLU models on the held-out file (runs in .venv-rasa, Python 3.10).

Usage: python scripts/rasa_nlu_compare.py HOLDOUT TRAIN_DIR OUT_JSON NAME=MODEL [NAME=MODEL ...]

For each trained Rasa model it parses every held-out example and measures intent
macro-F1, report_emergency recall and country accuracy (the normalised ISO code of
each annotated country mention must be among the predicted ones). It adds a TF-IDF +
logistic regression baseline trained on TRAIN_DIR, and the danger lexicon alone
(its recall on emergencies and its false positives on everything else).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import yaml
from rasa.core.agent import Agent
from rasa.shared.nlu.training_data.loading import load_data
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.pipeline import make_pipeline, make_union

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pmi.danger import Triage

EMERGENCY = "report_emergency"
POSSIBLE = "possible_danger"  # the triage asks "in danger now?" with the contacts
# The held-out file predates the split of self-harm from emergencies: a self-harm reading of
# one of its emergencies is the emergency path too, and is scored as report_emergency.
SAME_AS = {"report_self_harm": EMERGENCY}


def examples(path: str) -> list[dict]:
    data = load_data(path)
    out = []
    for message in data.intent_examples:
        countries = [
            e["value"] for e in message.get("entities") or [] if e.get("entity") == "country"
        ]
        out.append(
            {"text": message.get("text"), "intent": message.get("intent"), "countries": countries}
        )
    return out


def score(gold: list[dict], predicted: list[str], countries: list[list[str]] | None) -> dict:
    labels = sorted({g["intent"] for g in gold})
    truth = [g["intent"] for g in gold]
    emergencies = [i for i, g in enumerate(gold) if g["intent"] == EMERGENCY]
    result = {
        "macro_f1": round(f1_score(truth, predicted, labels=labels, average="macro"), 4),
        "accuracy": round(
            sum(t == p for t, p in zip(truth, predicted, strict=True)) / len(gold), 4
        ),
        "emergency_recall": round(
            sum(predicted[i] == EMERGENCY for i in emergencies) / len(emergencies), 4
        ),
        # The triage's reach: an urgent case (emergency, self-harm) or the danger question.
        "emergency_reached": round(
            sum(predicted[i] in (EMERGENCY, POSSIBLE) for i in emergencies) / len(emergencies), 4
        ),
        "emergency_false_positives": sum(
            p == EMERGENCY and t != EMERGENCY for t, p in zip(truth, predicted, strict=True)
        ),
    }
    if countries is not None:
        mentions = [
            (g["countries"], c) for g, c in zip(gold, countries, strict=True) if g["countries"]
        ]
        total = sum(len(g) for g, _ in mentions)
        hit = sum(sum(code in found for code in g) for g, found in mentions)
        result["country_accuracy"] = round(hit / total, 4) if total else None
    return result


async def evaluate_model(model: str, gold: list[dict]) -> dict:
    agent = Agent.load(model)
    predicted, countries = [], []
    started = time.monotonic()
    for i, g in enumerate(gold, 1):
        parsed = await agent.parse_message(g["text"])
        name = (parsed.get("intent") or {}).get("name") or ""
        predicted.append(SAME_AS.get(name, name))
        countries.append(
            [
                str(e.get("value")).upper()
                for e in parsed.get("entities") or []
                if e.get("entity") == "country"
            ]
        )
        if i % 100 == 0:
            print(f"  parsed {i}/{len(gold)}", flush=True)
    result = score(gold, predicted, countries)
    result["ms_per_message"] = round((time.monotonic() - started) * 1000 / len(gold), 2)
    return result


def baseline(train: list[dict], gold: list[dict]) -> dict:
    model = make_pipeline(
        make_union(
            TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True),
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True),
        ),
        LogisticRegression(max_iter=2000, C=10),
    )
    model.fit([t["text"] for t in train], [t["intent"] for t in train])
    return score(gold, list(model.predict([g["text"] for g in gold])), None)


def lexicon_alone(gold: list[dict], lexicon_path: str) -> dict:
    """The danger and self-harm phrases alone (no context, no classifier)."""
    triage = Triage(yaml.safe_load(Path(lexicon_path).read_text(encoding="utf-8")))
    found = [triage.evidence(g["text"]) for g in gold]
    flagged = [bool(e.danger or e.self_harm) for e in found]
    emergencies = [f for f, g in zip(flagged, gold, strict=True) if g["intent"] == EMERGENCY]
    others = [f for f, g in zip(flagged, gold, strict=True) if g["intent"] != EMERGENCY]
    return {
        "emergency_recall": round(sum(emergencies) / len(emergencies), 4),
        "false_positives": sum(others),
        "false_positive_rate": round(sum(others) / len(others), 4),
        "examples_flagged_wrongly": [
            g["text"] for f, g in zip(flagged, gold, strict=True) if f and g["intent"] != EMERGENCY
        ],
    }


async def main() -> dict:
    holdout, train_dir = sys.argv[1:3]
    models = dict(arg.split("=", 1) for arg in sys.argv[4:])
    gold = examples(holdout)
    train = examples(train_dir)
    print(f"held-out examples: {len(gold)}; training examples: {len(train)}", flush=True)
    results: dict = {}
    for name, model in models.items():
        print(f"evaluating {name} ({model})", flush=True)
        results[name] = await evaluate_model(model, gold)
    print("evaluating tfidf_logreg baseline", flush=True)
    results["tfidf_logreg"] = baseline(train, gold)
    results["danger_lexicon_alone"] = lexicon_alone(gold, "data/danger_lexicon.yml")
    return results


if __name__ == "__main__":
    results = asyncio.run(main())
    Path(sys.argv[3]).write_text(
        json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8"
    )
