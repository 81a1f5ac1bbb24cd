"""`make eval-nlu`: the project's NLU against Rasa's default pipeline and TF-IDF + LR.

Writes Rasa's own reports (per-intent F1, confusion matrix) to reports/nlu/project/,
the side-by-side figures to reports/nlu/comparison.json, and prints a table with the
targets of the held-out evaluation.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

from devtools.model import MODELS, RASA_BIN, RASA_DIR, ROOT, ensure_model, rasa_env

HOLDOUT = ROOT / "tests" / "nlu" / "holdout.yml"
REPORTS = ROOT / "reports" / "nlu"
DEFAULT_CONFIG = ROOT / "scripts" / "eval" / "rasa_default_config.yml"
SUMMARY = ROOT / "reports" / "nlu.json"
TARGETS = {"macro_f1": 0.90, "emergency_recall": 0.98, "country_accuracy": 0.95}


def run(cmd: list[str]) -> None:
    print("$ " + " ".join(Path(c).name if c.startswith(str(ROOT)) else c for c in cmd), flush=True)
    subprocess.run(cmd, cwd=ROOT, env=rasa_env(), check=True)


def default_pipeline_model() -> Path:
    digest = hashlib.sha256(DEFAULT_CONFIG.read_bytes())
    for path in sorted((RASA_DIR / "data" / "nlu").glob("*.yml")):
        digest.update(path.read_bytes())
    name = f"default-{digest.hexdigest()[:16]}"
    target = MODELS / "eval" / f"{name}.tar.gz"
    if target.exists():
        print(f"[eval] Rasa default pipeline model up to date: {target.name}", flush=True)
        return target
    print(
        "[eval] training Rasa's default pipeline on the same data (slow: 100 epochs)…", flush=True
    )
    run([
        str(RASA_BIN), "train", "nlu", "--config", str(DEFAULT_CONFIG),
        "--nlu", str(RASA_DIR / "data" / "nlu"), "--out", str(target.parent),
        "--fixed-model-name", name,
    ])  # fmt: skip
    return target


def write_summary(results: dict) -> None:
    """Write reports/nlu.json: the headline figures `make bench` and other tools read."""
    ours = results["this_pipeline"]
    summary = {
        "nlu_macro_f1": ours["macro_f1"],
        "emergency_recall": ours["emergency_recall"],
        "emergency_reached": ours.get("emergency_reached"),
        "country_accuracy": ours.get("country_accuracy"),
        "pipelines": {
            name: {
                k: results[name].get(k)
                for k in (
                    "macro_f1",
                    "emergency_recall",
                    "emergency_reached",
                    "country_accuracy",
                    "ms_per_message",
                )
            }
            for name in ("this_pipeline", "rasa_default", "tfidf_logreg")
        },
        "danger_lexicon_alone": results["danger_lexicon_alone"],
        "targets": TARGETS,
    }
    SUMMARY.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(f"[eval] summary in {SUMMARY.relative_to(ROOT)}", flush=True)


def main() -> int:
    project = ensure_model()
    REPORTS.mkdir(parents=True, exist_ok=True)
    print("[eval] rasa test nlu on the held-out file (reports/nlu/project)", flush=True)
    run([
        str(RASA_BIN), "test", "nlu", "--nlu", str(HOLDOUT), "--model", str(project),
        "--out", str(REPORTS / "project"),
    ])  # fmt: skip
    default = default_pipeline_model()
    out = REPORTS / "comparison.json"
    run([
        str(ROOT / ".venv-rasa" / "bin" / "python"), str(ROOT / "scripts" / "rasa_nlu_compare.py"),
        str(HOLDOUT), str(RASA_DIR / "data" / "nlu"), str(out),
        f"this_pipeline={project}", f"rasa_default={default}",
    ])  # fmt: skip
    results = json.loads(out.read_text(encoding="utf-8"))
    print("\npipeline         macro-F1  emergency recall  (reached)  country acc.  ms/msg")
    for name in ("this_pipeline", "rasa_default", "tfidf_logreg"):
        r = results[name]
        country = r.get("country_accuracy")
        print(
            f"{name:<16} {r['macro_f1']:>8.3f}  {r['emergency_recall']:>16.3f}  "
            f"{r.get('emergency_reached', 0):>9.3f}  "
            f"{'-' if country is None else f'{country:.3f}':>12}  {r.get('ms_per_message', '-'):>6}"
        )
    lex = results["danger_lexicon_alone"]
    print(
        f"\ndanger lexicon alone: emergency recall {lex['emergency_recall']:.3f}, "
        f"false positives {lex['false_positives']} ({lex['false_positive_rate']:.1%} of others)"
    )
    ours = results["this_pipeline"]
    missed = [k for k, v in TARGETS.items() if (ours.get(k) or 0) < v]
    write_summary(results)
    for key, target in TARGETS.items():
        print(
            f"target {key} >= {target}: {ours.get(key)} {'OK' if key not in missed else 'MISSED'}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
