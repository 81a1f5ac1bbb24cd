"""`make eval-emergency`: the emergency triage on realistic emergencies and look-alikes.

Sets (YAML, `items` of text / label / category / lang):
- `tests/nlu/emergency_holdout_v8.yml`: held out, written separately (2026-12-02) after v7
  was spent, never read, trained or tuned on; the targets are measured on it;
- `tests/nlu/emergency_holdout_v7.yml`: written separately after v6 and measured once as
  held out (in `history`); its texts were never read; its recall by language chose what
  development set 5 covers;
- `tests/nlu/emergency_holdout_v6.yml`: written separately after v5 and measured once as
  held out (in `history`); its texts were never read; its recall by language and category
  chose what development set 4 covers;
- `tests/nlu/emergency_holdout_v5.yml`: written separately after v4 and measured twice as
  held out (both runs in `history`); its texts were never read; its self-harm recall led to
  development set 3;
- `tests/nlu/emergency_holdout_v4.yml`: written separately after v3 and measured once as
  held out (in `history`); its texts were never read, but its recall per category chose
  what development set 2 covers;
- `tests/nlu/emergency_holdout_v3.yml`: written separately after v1 and v2 were spent and
  measured once as held out (in `history`: one self-harm message missed); its texts were
  never read; the self-harm phrases were then widened on a new development set;
- `tests/nlu/emergency_holdout_v2.yml`: written separately after v1 was spent and measured
  twice (its texts never read; between the runs training data and rules changed on the
  evidence of the development sets) — both runs are in the report under `history`;
- `tests/nlu/emergency_holdout.yml` (v1): written separately and measured once as held out
  (that run is in `history`); its misses were then read and fixed, so it is now a
  development set like the next one;
- `tests/nlu/emergency_dev.yml`: the development set the decision rules were tuned on;
- `tests/nlu/self_harm_dev.yml`: a development set of self-harm messages and look-alikes
  (2026-12-02), written after v3 missed one self-harm message (not read) to widen the
  self-harm phrases without reading a held-out set;
- `tests/nlu/emergency_dev2.yml`: development set 2 (2026-12-02): debt bondage, passport
  held with threats, colloquial self-harm, and look-alikes;
- `tests/nlu/emergency_dev3.yml`: development set 3 (2026-12-02): self-harm said in many
  ways, and sad, tired or grieving workers who are safe (`--dev dev3` lists its misses);
- `tests/nlu/emergency_dev4.yml`: development set 4 (2026-12-02), written after v6's recall
  by language and category (texts unread): Javanese, formal Indonesian, English.
- `tests/nlu/emergency_dev5.yml`: development set 5 (2026-12-02), written after v7's recall
  by language and category (texts unread): English and Malaysian Malay, sexual abuse,
  trafficking, co-worker death, tired and quarantined workers.

Each set is parsed by this project's model (the triage decides clear / self_harm /
possible / none) and by the model of the lexicon-override design it replaced (commit
`BASELINE`: any danger phrase, or the classifier's top intent, opened an urgent case),
trained from that commit's sources once and cached under `models/eval/`.

Reported in `reports/emergency.json` and printed: recall of "clear or possible" on the
emergencies (self-harm separately), and on the harmless look-alikes the share that opened
an urgent case and the share that got the danger question, per category and language.
Misses of the held-out set are counted, not listed: reading them would be tuning on it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import yaml

from devtools.model import MODELS, RASA_BIN, ROOT, ensure_model, rasa_env

BASELINE = "054845c"  # the last commit of the lexicon-override design
SETS = {
    "holdout": ROOT / "tests" / "nlu" / "emergency_holdout_v10.yml",
    "holdout_v9_spent": ROOT / "tests" / "nlu" / "emergency_holdout_v9.yml",
    "holdout_v8_spent": ROOT / "tests" / "nlu" / "emergency_holdout_v8.yml",
    "holdout_v7_spent": ROOT / "tests" / "nlu" / "emergency_holdout_v7.yml",
    "holdout_v6_spent": ROOT / "tests" / "nlu" / "emergency_holdout_v6.yml",
    "holdout_v5_spent": ROOT / "tests" / "nlu" / "emergency_holdout_v5.yml",
    "holdout_v4_spent": ROOT / "tests" / "nlu" / "emergency_holdout_v4.yml",
    "holdout_v3_spent": ROOT / "tests" / "nlu" / "emergency_holdout_v3.yml",
    "holdout_v2_spent": ROOT / "tests" / "nlu" / "emergency_holdout_v2.yml",
    "holdout_v1_spent": ROOT / "tests" / "nlu" / "emergency_holdout.yml",
    "dev": ROOT / "tests" / "nlu" / "emergency_dev.yml",
    "self_harm_dev": ROOT / "tests" / "nlu" / "self_harm_dev.yml",
    "dev2": ROOT / "tests" / "nlu" / "emergency_dev2.yml",
    "dev3": ROOT / "tests" / "nlu" / "emergency_dev3.yml",
    "dev4": ROOT / "tests" / "nlu" / "emergency_dev4.yml",
    "dev5": ROOT / "tests" / "nlu" / "emergency_dev5.yml",
    "dev6": ROOT / "tests" / "nlu" / "emergency_dev6.yml",
}
# The runs of the earlier held-out sets while they were still held out (2026-12-02).
HISTORY = [
    {"set": "v1", "run": 1, "note": "first run; its misses were then read and fixed",
     "triage": {"recall": 0.9749, "self_harm_recall": 1.0, "harmless_urgent": 0.1538,
                "harmless_asked": 0.1346},
     "lexicon_override": {"recall": 0.8442, "self_harm_recall": 0.7353,
                          "harmless_urgent": 0.5513, "harmless_asked": 0.0}},
    {"set": "v2", "run": 1, "note": "after the v1 fixes",
     "triage": {"recall": 0.9556, "self_harm_recall": 0.9, "harmless_urgent": 0.0992,
                "harmless_asked": 0.2443}},
    {"set": "v2", "run": 2, "note": "after more training data and self-harm patterns",
     "triage": {"recall": 0.9889, "self_harm_recall": 1.0, "harmless_urgent": 0.1069,
                "harmless_asked": 0.3511}},
    {"set": "v3", "run": 1, "note": "held out; one self-harm message missed (not read)",
     "triage": {"recall": 0.9845, "self_harm_recall": 0.9688, "harmless_urgent": 0.0496,
                "harmless_asked": 0.1418},
     "lexicon_override": {"recall": 0.8144, "self_harm_recall": 0.6562,
                          "harmless_urgent": 0.5816, "harmless_asked": 0.0}},
    {"set": "v4", "run": 1, "note": "held out; recall by category (not the texts) then "
     "guided which development set 2 was written: debt bondage, passport threats, self-harm",
     "triage": {"recall": 0.96, "self_harm_recall": 0.9545, "harmless_urgent": 0.075,
                "harmless_asked": 0.2},
     "lexicon_override": {"recall": 0.7533, "self_harm_recall": 0.6818,
                          "harmless_urgent": 0.525, "harmless_asked": 0.0}},
    {"set": "v5", "run": 1, "note": "held out, its texts unread; afterwards two patterns were "
     "added from eval-nlu's errors ('sy dikunci' alone, badly hurt and left without care)",
     "triage": {"recall": 0.9429, "self_harm_recall": 0.8947, "harmless_urgent": 0.0429,
                "harmless_asked": 0.3},
     "lexicon_override": {"recall": 0.7214, "self_harm_recall": 0.5263,
                          "harmless_urgent": 0.6143, "harmless_asked": 0.0}},
    {"set": "v5", "run": 2, "note": "after those two patterns; then development set 3 was "
     "written and the lexicon widened on it, and v6 written",
     "triage": {"recall": 0.9429, "self_harm_recall": 0.8947, "harmless_urgent": 0.0571,
                "harmless_asked": 0.2857}},
    {"set": "v6", "run": 1, "note": "held out, its texts unread; its recall by language and "
     "category (Javanese 0.75) then chose what development set 4 covers",
     "triage": {"recall": 0.9477, "self_harm_recall": 0.9375, "harmless_urgent": 0.0488,
                "harmless_asked": 0.0732},
     "lexicon_override": {"recall": 0.8023, "self_harm_recall": 0.625,
                          "harmless_urgent": 0.3984, "harmless_asked": 0.0}},
    {"set": "v7", "run": 1, "note": "held out, its texts unread; after development set 4 and "
     "the lower 'possible' thresholds",
     "triage": {"recall": 0.9659, "self_harm_recall": 0.9773, "harmless_urgent": 0.0579,
                "harmless_asked": 0.2397},
     "lexicon_override": {"recall": 0.7614, "self_harm_recall": 0.6364,
                          "harmless_urgent": 0.4876, "harmless_asked": 0.0}},
    {"set": "v8", "run": 1, "note": "held out, its texts unread; after development set 5 and "
     "its fixes (a death hushed up, detention centres, hypothetical questions read as "
     "complaints)",
     "triage": {"recall": 0.9593, "self_harm_recall": 1.0, "harmless_urgent": 0.0303,
                "harmless_asked": 0.2121},
     "lexicon_override": {"recall": 0.7733, "self_harm_recall": 0.6,
                          "harmless_urgent": 0.4949, "harmless_asked": 0.0}},
    {"set": "v9", "run": 1, "note": "held out, its texts unread; after v8 was spent and its "
     "misses fixed in general forms (--holdout-only run)",
     "triage": {"recall": 0.9737, "self_harm_recall": 0.975, "harmless_urgent": 0.05,
                "harmless_asked": 0.21},
     "lexicon_override": {"recall": 0.7684, "self_harm_recall": 0.675,
                          "harmless_urgent": 0.53, "harmless_asked": 0.0}},
]  # fmt: skip
REPORT = ROOT / "reports" / "emergency.json"
RASA_PYTHON = ROOT / ".venv-rasa" / "bin" / "python"
URGENT = ("clear", "self_harm")  # levels that open an urgent case and alert a mission
REACHED = ("clear", "self_harm", "possible")  # levels that reach the emergency path
TARGETS = {"recall": 0.98, "self_harm_recall": 1.0, "harmless_urgent": 0.10, "harmless_asked": 0.35}


def say(text: str) -> None:
    print(f"[eval-emergency] {text}", flush=True)


def baseline_model() -> tuple[Path, Path]:
    """The baseline's model and source tree (trained once from that commit, then cached)."""
    source = MODELS / "eval" / f"baseline-src-{BASELINE}"
    model = MODELS / "eval" / f"baseline-{BASELINE}.tar.gz"
    if not source.exists():
        source.mkdir(parents=True)
        archive = subprocess.run(
            ["git", "archive", BASELINE, "rasa_project", "data/danger_lexicon.yml"],
            cwd=ROOT,
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(source)], input=archive, check=True)
    if not model.exists():
        say(f"training the baseline model of commit {BASELINE} (once; a few minutes)…")
        env = rasa_env()
        env["PYTHONPATH"] = str(source)
        rasa = source / "rasa_project"
        subprocess.run(
            [
                str(RASA_BIN), "train", "--config", str(rasa / "config.yml"),
                "--domain", str(rasa / "domain"), "--data", str(rasa / "data"),
                "--out", str(model.parent), "--fixed-model-name", model.name[: -len(".tar.gz")],
            ],
            cwd=source,
            env=env,
            check=True,
        )  # fmt: skip
    return model, source


def parse(model: Path, texts: list[str], pythonpath: Path) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "in.json", Path(tmp) / "out.json"
        source.write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
        env = rasa_env()
        env["PYTHONPATH"] = str(pythonpath)
        subprocess.run(
            [str(RASA_PYTHON), str(ROOT / "scripts" / "rasa_parse.py"), str(model), str(source),
             str(target)],
            cwd=pythonpath,
            env=env,
            check=True,
        )  # fmt: skip
        return json.loads(target.read_text(encoding="utf-8"))


def level_of(parsed: dict, design: str) -> str:
    if design == "triage":
        return (parsed.get("triage") or {}).get("level") or "none"
    # The lexicon-override design had one outcome only: the emergency path, or not.
    return "clear" if parsed.get("intent") == "report_emergency" else "none"


def rate(hits: int, total: int) -> float | None:
    return round(hits / total, 4) if total else None


def summarise(items: list[dict], levels: list[str], show_misses: bool) -> dict:
    danger = [(i, lv) for i, lv in zip(items, levels, strict=True) if i["label"] == "danger"]
    harmless = [(i, lv) for i, lv in zip(items, levels, strict=True) if i["label"] != "danger"]
    out: dict = {
        "emergencies": len(danger),
        "harmless": len(harmless),
        "recall": rate(sum(lv in REACHED for _, lv in danger), len(danger)),
        "clear_on_emergencies": rate(sum(lv in URGENT for _, lv in danger), len(danger)),
        "self_harm_recall": rate(
            sum(lv in REACHED for i, lv in danger if i["category"] == "self_harm"),
            sum(i["category"] == "self_harm" for i, _ in danger),
        ),
        "harmless_urgent": rate(sum(lv in URGENT for _, lv in harmless), len(harmless)),
        "harmless_asked": rate(sum(lv == "possible" for _, lv in harmless), len(harmless)),
    }
    for key in ("category", "lang"):
        groups: dict = defaultdict(lambda: defaultdict(list))
        for item, level in zip(items, levels, strict=True):
            groups[item["label"]][item[key]].append(level)
        out[f"by_{key}"] = {
            "danger": {
                g: {"n": len(v), "recall": rate(sum(x in REACHED for x in v), len(v))}
                for g, v in sorted(groups["danger"].items())
            },
            "harmless": {
                g: {
                    "n": len(v),
                    "urgent": rate(sum(x in URGENT for x in v), len(v)),
                    "asked": rate(sum(x == "possible" for x in v), len(v)),
                }
                for g, v in sorted(groups["harmless"].items())
            },
        }
    missed = [i for i, lv in danger if lv not in REACHED]
    alarmed = [i for i, lv in harmless if lv in URGENT]
    out["missed"] = len(missed)
    out["false_alarms"] = len(alarmed)
    if show_misses:
        out["missed_texts"] = [i["text"] for i in missed]
        out["false_alarm_texts"] = [i["text"] for i in alarmed]
    return out


def show_development_set(name: str) -> int:
    """`--dev NAME`: a development set's misses and false alarms (never a held-out set)."""
    if name.startswith("holdout") and not name.endswith("_spent"):
        say("held-out sets are not shown: their texts stay unread (spent ones are)")
        return 2
    items = yaml.safe_load(SETS[name].read_text(encoding="utf-8"))["items"]
    parsed = parse(ensure_model(), [i["text"] for i in items], ROOT)
    for item, p in zip(items, parsed, strict=True):
        level = level_of(p, "triage")
        wrong = (item["label"] == "danger") != (level in REACHED) or (
            item["label"] != "danger" and level != "none"
        )
        if wrong:
            print(f"{item['label']:<8} {item['category']:<22} {level:<9} {p.get('intent')}: "
                  f"{item['text']}")  # fmt: skip
    result = summarise(items, [level_of(p, "triage") for p in parsed], False)
    keys = ("recall", "self_harm_recall", "harmless_urgent", "harmless_asked")
    print(" ".join(f"{k}={result[k]}" for k in keys))
    return 0


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--dev":
        return show_development_set(sys.argv[2])
    model = ensure_model()
    baseline, baseline_src = baseline_model()
    report: dict = {
        "baseline_commit": BASELINE,
        "targets": TARGETS,
        "history": HISTORY,
        "sets": {},
    }
    names = list(SETS)
    if "--holdout-only" in sys.argv:  # the other sets' figures kept from the last full run
        if REPORT.exists():
            report["sets"] = json.loads(REPORT.read_text(encoding="utf-8")).get("sets", {})
        names = ["holdout"]
    for name in names:
        path = SETS[name]
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        items = raw["items"]
        texts = [i["text"] for i in items]
        say(f"{name}: {len(items)} messages, this project's model")
        ours = parse(model, texts, ROOT)
        say(f"{name}: the baseline model ({BASELINE})")
        theirs = parse(baseline, texts, baseline_src)
        report["sets"][name] = {
            "file": str(path.relative_to(ROOT)),
            "written": str(raw.get("written")),
            "triage": summarise(items, [level_of(p, "triage") for p in ours], name != "holdout"),
            "lexicon_override": summarise(
                items, [level_of(p, "baseline") for p in theirs], name != "holdout"
            ),
        }
    REPORT.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\n{'set':<17} {'design':<17} {'recall':>7} {'self-harm':>9} "
          f"{'harmless urgent':>16} {'harmless asked':>15}")  # fmt: skip
    for name, result in report["sets"].items():
        if name not in SETS:
            continue  # a set renamed since the last full run
        for design in ("triage", "lexicon_override"):
            r = result[design]
            print(
                f"{name:<17} {design:<17} {r['recall']:>7} {r['self_harm_recall']!s:>9} "
                f"{r['harmless_urgent']:>16} {r['harmless_asked']:>15}"
            )
    held = report["sets"]["holdout"]["triage"]
    checks = {
        "recall": held["recall"] >= TARGETS["recall"],
        "self_harm_recall": (held["self_harm_recall"] or 0) >= TARGETS["self_harm_recall"],
        "harmless_urgent": held["harmless_urgent"] <= TARGETS["harmless_urgent"],
        "harmless_asked": held["harmless_asked"] <= TARGETS["harmless_asked"],
    }
    for key, ok in checks.items():
        print(f"target {key} ({TARGETS[key]}) on the held-out set: {'OK' if ok else 'MISSED'}")
    say(f"report in {REPORT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
