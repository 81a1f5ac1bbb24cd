"""`make bench-policies`: what Rasa's dialogue policies cost per turn on this machine.

The project runs RulePolicy alone (every turn is a rule). This trains the same pipeline,
domain and data with other policy sets, then measures each model on the same Rasa server
set-up, one after another, with the in-memory tracker store and the project's action server:

- a turn one at a time (p50/p95) over every scripted message (`bench_conversations.yml`);
- saturation: 20 conversations with no think time for `--seconds`, messages per second.

Variants: RulePolicy (the project's); + MemoizationPolicy; + TEDPolicy with max_history 3
and with max_history 8 (10 epochs: training length does not change the cost of a prediction).
Models are cached by a hash of the model inputs and the variant, so a rerun only measures.
Writes reports/bench_policies.json; `make bench` puts the table in reports/bench.md.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from devtools.databases import migrate
from devtools.load import load_conversations
from devtools.model import RASA_DIR, cache_dir, ensure_model, inputs_hash, train
from devtools.rest_load import rasa_rest_load
from devtools.stack import DEV_CREDENTIALS, Stack
from devtools.stats import summary
from scripts.bench_common import CONVERSATIONS, REPORTS, git_commit, say
from scripts.bench_costs import saturation

RULES = {
    "name": "RulePolicy",
    "core_fallback_threshold": 0.3,
    "core_fallback_action_name": "action_default_fallback",
    "enable_fallback_prediction": True,
}
VARIANTS: dict[str, list[dict[str, Any]] | None] = {
    "RulePolicy (this project)": None,  # the project's own model
    "RulePolicy + MemoizationPolicy (max_history 5)": [
        {"name": "MemoizationPolicy", "max_history": 5},
        RULES,
    ],
    "RulePolicy + TEDPolicy (max_history 3)": [
        {"name": "TEDPolicy", "max_history": 3, "epochs": 10, "random_seed": 1},
        RULES,
    ],
    "RulePolicy + TEDPolicy (max_history 8)": [
        {"name": "TEDPolicy", "max_history": 8, "epochs": 10, "random_seed": 1},
        RULES,
    ],
}


def variant_model(name: str, policies: list[dict[str, Any]]) -> Path:
    """The project's pipeline with these policies, trained once per model-input hash."""
    digest = hashlib.sha256(
        (inputs_hash() + json.dumps(policies, sort_keys=True)).encode()
    ).hexdigest()[:16]
    cached = cache_dir() / "policies" / f"policies-{digest}.tar.gz"
    if cached.exists():
        say(f"{name}: model cached ({cached.name})")
        return cached
    config = yaml.safe_load((RASA_DIR / "config.yml").read_text(encoding="utf-8"))
    config["policies"] = copy.deepcopy(policies)
    with tempfile.TemporaryDirectory(prefix="pmi-policies-") as tmp:
        config_file = Path(tmp) / "config.yml"
        config_file.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        say(f"{name}: training (the NLU part comes from Rasa's cache if unchanged)")
        train(Path(tmp) / "variant.tar.gz", config_file)
        cached.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(Path(tmp) / "variant.tar.gz", cached.with_suffix(".tmp"))
        cached.with_suffix(".tmp").replace(cached)
    return cached


async def measure(seconds: float) -> dict[str, Any]:
    conversations = load_conversations(CONVERSATIONS)
    texts = [(t, c.language) for c in conversations for t in c.turns]
    models = {
        name: ensure_model() if policies is None else variant_model(name, policies)
        for name, policies in VARIANTS.items()
    }
    workdir = Path(tempfile.mkdtemp(prefix="pmi-bench-policies-"))
    db = f"sqlite:///{workdir / 'actions.db'}"  # the action server's own database
    migrate(db)
    stack = Stack(workdir, db)
    stack.action_server()
    results: dict[str, Any] = {}
    try:
        stack.services["actions"].start()
        await stack.services["actions"].ready()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
            for index, (name, model) in enumerate(models.items()):
                rasa = stack.rasa(f"rasa-{index}", model=model, credentials=DEV_CREDENTIALS)
                rasa.start()
                try:
                    await rasa.ready()
                    say(f"{name}: warm-up, then {len(texts)} turns one at a time")
                    await rasa_rest_load(http, rasa.url, conversations, 2, per_slot=1, settle=0)
                    one: list[float] = []
                    for i, (text, language) in enumerate(texts):
                        payload = {
                            "sender": f"pol-{index}-{i}-{os.getpid()}",
                            "message": text,
                            "metadata": {"language": language},
                        }
                        started = time.monotonic()
                        async with http.post(
                            f"{rasa.url}/webhooks/rest/webhook", json=payload
                        ) as resp:
                            await resp.read()
                        one.append(time.monotonic() - started)
                    say(f"{name}: saturation, 20 conversations, {seconds:.0f}s")
                    sat = await saturation(http, rasa.url, conversations, seconds)
                    results[name] = {
                        "turn_one_at_a_time": summary(one),
                        "saturation": sat,
                        "peak_rss_mb": round(rasa.peak_rss_mb(), 1),
                    }
                    say(
                        f"  {name}: turn p50 {results[name]['turn_one_at_a_time']['p50_ms']} ms, "
                        f"{sat['msgs_per_s']} msgs/s saturated"
                    )
                finally:
                    rasa.stop()
    finally:
        stack.stop_all()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="saturation window")
    parser.add_argument("--out", type=Path, default=REPORTS)
    args = parser.parse_args(argv)
    say(f"{os.cpu_count()} cores, commit {git_commit()}")
    results = asyncio.run(measure(args.seconds))
    report = {
        "cpu_count": os.cpu_count(),
        "commit": git_commit(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "variants": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "bench_policies.json"
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    say(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
