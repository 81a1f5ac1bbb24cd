"""`make bench-langid`: this project's language decision against raw langdetect.

Both run in the same process on the same labelled files (default: data/eval/langid*.tsv,
headline figures from langid.tsv):
the detector as `python -m bot.language` uses it (a new user: no choice, no history, no
channel hint), and langdetect's top guess with a fixed seed, where any language it
answers other than the label counts as wrong. Prints accuracy, per-language accuracy and
a confusion summary, the machine and the commit, and writes reports/langid.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from langdetect import DetectorFactory, LangDetectException
from langdetect import detect as langdetect_top

from bot.language import decide_for_new_user, language_settings

ROOT = Path(__file__).resolve().parent.parent
EVAL = ROOT / "data" / "eval"
# The headline set, then the two written after the word lists were tuned (see their headers).
DEFAULT_SETS = (EVAL / "langid.tsv", EVAL / "langid_fresh.tsv", EVAL / "langid_untouched.tsv")
DEFAULT_OUT = ROOT / "reports" / "langid.json"
TARGET = 0.95


def load(path: Path) -> list[tuple[str, str]]:
    """(label, text) pairs; '#' comment lines and the 'lang<TAB>text' header are skipped."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#") or line == "lang\ttext":
            continue
        label, sep, text = line.partition("\t")
        if not sep:
            raise SystemExit(f"{path}:{number}: expected lang<TAB>text")
        rows.append((label.strip(), text))
    return rows


def raw_langdetect(text: str) -> str:
    DetectorFactory.seed = 0
    try:
        return langdetect_top(text)
    except LangDetectException:
        return "none"  # no features (digits, punctuation only): no answer


def score(rows: list[tuple[str, str]], predicted: list[str]) -> dict:
    """Accuracy, per-label accuracy and the confusions (label -> predicted: count)."""
    per: dict[str, list[int]] = {}
    confusions: Counter[str] = Counter()
    for (label, _), guess in zip(rows, predicted, strict=True):
        hits = per.setdefault(label, [0, 0])
        hits[1] += 1
        if guess == label:
            hits[0] += 1
        else:
            confusions[f"{label}->{guess}"] += 1
    correct = sum(h[0] for h in per.values())
    return {
        "accuracy": round(correct / len(rows), 4),
        "per_language": {k: round(h[0] / h[1], 4) for k, h in sorted(per.items())},
        "confusions": dict(confusions.most_common()),
    }


def shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def git_commit() -> str:
    """HEAD, marked when the detector or the sets differ from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "bot/language.py", "data/eval"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return f"{head or 'unknown'}{' + uncommitted changes' if dirty else ''}"


def evaluate(path: Path, default: str, supported: tuple[str, ...]) -> dict:
    """Run both detectors on one labelled file, print the comparison, return the figures."""
    rows = load(path)
    started = time.perf_counter()
    ours = [decide_for_new_user(t, default=default, supported=supported) for _, t in rows]
    ours_seconds = time.perf_counter() - started
    started = time.perf_counter()
    raw = [raw_langdetect(t) for _, t in rows]
    raw_seconds = time.perf_counter() - started
    mine, theirs = score(rows, ours), score(rows, raw)

    counts = Counter(label for label, _ in rows)
    print(f"set: {shown(path)}, n = {len(rows)}", end=" ")
    print(f"({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))})")
    print(f"  {'detector':<32}{'accuracy':>9}  " + "  ".join(f"{k:>6}" for k in sorted(counts)))
    for name, result in (
        ("this detector (new user)", mine),
        ("raw langdetect (seed 0, top)", theirs),
    ):
        per = "  ".join(f"{result['per_language'][k]:>6.3f}" for k in sorted(counts))
        print(f"  {name:<32}{result['accuracy']:>9.3f}  {per}")
    for name, result in (("this detector", mine), ("raw langdetect", theirs)):
        top = ", ".join(f"{k} {v}" for k, v in list(result["confusions"].items())[:8])
        print(f"  confusions, {name} (label->answer): {top or 'none'}")
    print(f"  time: this detector {ours_seconds:.2f} s, langdetect {raw_seconds:.2f} s")
    return {
        "langid_accuracy": mine["accuracy"],
        "langdetect_raw_accuracy": theirs["accuracy"],
        "n": len(rows),
        "set": shown(path),
        "labels": dict(sorted(counts.items())),
        "langid": mine,
        "langdetect_raw": theirs,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "files", nargs="*", type=Path, help="labelled sets; the first is the headline one"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    files = args.files or [p for p in DEFAULT_SETS if p.exists()]

    default, supported = language_settings()
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"commit: {git_commit()}")
    results = []
    for path in files:
        print()
        results.append(evaluate(path, default, supported))
    headline = results[0]
    met = headline["langid_accuracy"] >= TARGET
    print(f"\ntarget accuracy >= {TARGET} on {headline['set']}: {'met' if met else 'NOT met'}")

    report = {
        **headline,
        "target": TARGET,
        "cores": os.cpu_count(),
        "commit": git_commit(),
        "other_sets": results[1:],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {shown(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
