"""`make bench`, what a Rasa turn costs: NLU alone, rule-only and custom-action turns, and
the tracker store (in memory, or SQL on PostgreSQL with a Redis lock store)."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Sequence
from typing import Any

import aiohttp
import yaml

from devtools.databases import create_postgres_database, drop_postgres_database
from devtools.load import Conversation
from devtools.model import ROOT
from devtools.net import reachable
from devtools.rest_load import rasa_rest_load
from devtools.stack import DEV_CREDENTIALS, Stack
from devtools.stats import per_second, summary
from scripts.bench_common import POSTGRES_ADMIN_URL, REDIS, REPORTS, say


def rule_actions() -> dict[str, list[str]]:
    """Intent -> the actions its rule runs (outside forms), from rasa_project/data/rules."""
    found: dict[str, list[str]] = {}
    for path in sorted((ROOT / "rasa_project" / "data" / "rules").glob("*.yml")):
        for rule in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("rules", []):
            steps = rule.get("steps") or []
            if steps and "intent" in steps[0]:
                actions = [s["action"] for s in steps[1:] if "action" in s]
                found.setdefault(steps[0]["intent"], actions)
    return found


async def nlu_and_turns(
    http: aiohttp.ClientSession, token: str, rasa_url: str, conversations: Sequence[Conversation]
) -> dict[str, Any]:
    """NLU alone (/model/parse), then full turns by kind, one message at a time."""
    texts = [(t, c.language) for c in conversations for t in c.turns]
    rules = rule_actions()
    parse_s: list[float] = []
    kind_of: dict[str, str] = {}
    say(f"rasa costs: NLU alone (/model/parse) on {len(texts)} messages, one at a time")
    for text, _ in texts:
        started = time.monotonic()
        async with http.post(
            f"{rasa_url}/model/parse", params={"token": token}, json={"text": text}
        ) as resp:
            body = await resp.json()
        parse_s.append(time.monotonic() - started)
        actions = rules.get(body["intent"]["name"], [])
        if not actions:
            kind_of[text] = "other (form or fallback)"
        elif all(a.startswith("utter_") for a in actions):
            kind_of[text] = "rule, response only"
        else:
            kind_of[text] = "rule, custom action"
    say("rasa costs: full turns one at a time, by kind")
    by_kind: dict[str, list[float]] = {}
    for i, (text, language) in enumerate(texts):
        sender = f"cost-{i}-{secrets.token_hex(3)}"
        payload = {"sender": sender, "message": text, "metadata": {"language": language}}
        started = time.monotonic()
        async with http.post(f"{rasa_url}/webhooks/rest/webhook", json=payload) as resp:
            await resp.read()
        by_kind.setdefault(kind_of[text], []).append(time.monotonic() - started)
    return {
        "nlu_parse": summary(parse_s),
        "turn_by_kind": {k: summary(v) for k, v in sorted(by_kind.items())},
        "policies": policies_note(),
    }


async def sql_saturation(
    http: aiohttp.ClientSession,
    stack: Stack,
    conversations: Sequence[Conversation],
    seconds: float,
) -> dict[str, Any]:
    """Saturation of a second Rasa server, on a PostgreSQL tracker store and a Redis lock."""
    from sqlalchemy.engine import make_url

    tracker_url = await create_postgres_database(POSTGRES_ADMIN_URL)
    db = make_url(tracker_url)
    endpoints = stack.endpoints_file(
        "rasa-sql",
        tracker_store={
            "type": "SQL",
            "dialect": "postgresql",
            "url": db.host,
            "port": db.port or 5432,
            "db": db.database,
            "username": db.username,
        },
        lock_store={"type": "redis", "url": REDIS[0], "port": REDIS[1], "db": 3},
    )
    rasa_sql = stack.rasa("rasa-sql", endpoints=endpoints, credentials=DEV_CREDENTIALS)
    say("rasa costs: a second Rasa with a PostgreSQL tracker store and a Redis lock store")
    rasa_sql.start()
    try:
        await rasa_sql.ready()
        await rasa_rest_load(http, rasa_sql.url, conversations, 2, per_slot=1, settle=0)
        say(f"rasa costs: saturation, SQL tracker + Redis lock, {seconds:.0f}s")
        found = await saturation(http, rasa_sql.url, conversations, seconds)
        rasa_sql.peak_rss_mb()
        return found
    finally:
        rasa_sql.stop()
        await drop_postgres_database(POSTGRES_ADMIN_URL, tracker_url)


async def rasa_costs(
    http: aiohttp.ClientSession,
    stack: Stack,
    rasa_url: str,
    conversations: Sequence[Conversation],
    seconds: float,
    postgres: bool,
) -> dict[str, Any]:
    """Per-turn cost of NLU, rule-only and custom-action turns, and of the tracker store."""
    costs = await nlu_and_turns(http, stack.rasa_token, rasa_url, conversations)
    say(f"rasa costs: saturation (no think time, 20 conversations, {seconds:.0f}s), in memory")
    costs["saturation_in_memory"] = await saturation(http, rasa_url, conversations, seconds)
    costs["saturation_sql_redis"] = (
        await sql_saturation(http, stack, conversations, seconds)
        if postgres and reachable(*REDIS)
        else None
    )
    variants = REPORTS / "bench_policies.json"  # `make bench-policies`, if it was run
    costs["policy_variants"] = json.loads(variants.read_text()) if variants.exists() else None
    mem, sql = costs["saturation_in_memory"], costs.get("saturation_sql_redis")
    say(
        f"  NLU p50 {costs['nlu_parse']['p50_ms']} ms; saturated Rasa {mem['msgs_per_s']} msgs/s "
        f"in memory, {sql['msgs_per_s'] if sql else '-'} msgs/s SQL + Redis"
    )
    return costs


async def saturation(
    http: aiohttp.ClientSession,
    rasa_url: str,
    conversations: Sequence[Conversation],
    seconds: float,
) -> dict[str, Any]:
    start = time.monotonic()
    turns = await rasa_rest_load(
        http, rasa_url, conversations, 20, duration=seconds, settle=0, prefix="sat"
    )
    done = [t.sent_at + t.seconds for t in turns if t.seconds is not None]
    return {
        "msgs_per_s": per_second(done, start, seconds),
        "latency": summary([t.seconds for t in turns if t.seconds is not None]),
        "failed": sum(1 for t in turns if t.seconds is None),
    }


def policies_note() -> dict[str, Any]:
    config = yaml.safe_load((ROOT / "rasa_project" / "config.yml").read_text(encoding="utf-8"))
    names = [p["name"] for p in config.get("policies") or []]
    return {
        "configured": names,
        "note": (
            "Only RulePolicy: each turn's next action is a rule lookup on the tracker (no "
            "TEDPolicy inference, no memoization), so the dialogue side costs little; a turn "
            "is NLU (DIET without transformer layers) + rule lookup + the action server "
            "call(s) + the tracker store. Adding TEDPolicy would add a neural inference per "
            "predicted action, growing with max_history."
        )
        if names == ["RulePolicy"]
        else "see rasa_project/config.yml",
    }
