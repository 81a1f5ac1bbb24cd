"""`make eval-complaints`: scripted complaints driven through the real app, Rasa and actions.

Sets: `tests/complaints/eval_complaints_v2.yml` (held out: the targets are measured on
it), `eval_complaints.yml` (v1, spent: measured once as held out, see `HISTORY`) and
`dev_complaints.yml` (the development set the form was shaped on).

Each conversation of a set (`tests/complaints/*.yml`, format in their headers) is typed into
the web chat of a real app (its own cookie, as a browser), which relays to the real Rasa
server with the trained model and the real action server. The driver reads which question
the bot asked from the reply (the domain's own question texts) and types the scripted
answer to it, or the scripted side question where one is due; it never answers a question
twice the same way (a repeated question counts as a turn, and as stuck after 3 repeats).

Reported in `reports/complaints.json` and printed: turns after the first message until the
consent question (median, p90; per opening: both = problem and place named at once),
fields of the filed case that are right (category, country, city, mission), side
questions answered and the form resumed, and conversations stuck (no consent question
within `MAX_TURNS`). A complaint the triage takes for an emergency (an urgent case at
once) is counted apart, with whether its mission is right; where the bot asks "in danger
now?" the driver answers no (nobody in these scripts is in danger now). The held-out
set's failures are counted, not listed (`--show` lists them for the development set
only): reading them would be tuning on it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import yaml
from sqlalchemy import select

from devtools.databases import migrate
from devtools.model import ROOT, ensure_model
from devtools.stack import Stack
from devtools.stats import percentile
from pmi.db import create_engine, create_sessionmaker
from pmi.models import Case

SETS = {
    "holdout": ROOT / "tests" / "complaints" / "eval_complaints_v3.yml",
    "holdout_v2_spent": ROOT / "tests" / "complaints" / "eval_complaints_v2.yml",
    "holdout_v1_spent": ROOT / "tests" / "complaints" / "eval_complaints.yml",
    "dev": ROOT / "tests" / "complaints" / "dev_complaints.yml",
}
# The run of v1 while it was held out (2026-12-02, commit 4d80710; the driver did not yet
# tell an emergency escalation from a stuck form). Its failures were not read; the form was
# then changed on the development set's evidence (complaints the triage escalates, a problem
# told before "mau lapor"), and v2 was written as the new held-out set.
HISTORY = [
    {"set": "v1", "run": 1, "n": 64, "median_turns": 8, "median_turns_both": 8,
     "fields_correct": {"category": 0.6719, "country": 0.7656, "city": 0.75, "mission": 0.7656},
     "asides_answered": "1/6", "stuck": 15},
    {"set": "v2", "run": 1, "n": 60, "median_turns": 7, "median_turns_both": 4,
     "fields_correct": {"category": 0.877, "country": 0.930, "city": 0.930, "mission": 0.930},
     "stuck": 4, "note": "before the fixes made on v1's evidence"},
    {"set": "v2", "run": 2, "n": 60, "median_turns": 8, "median_turns_both": 4,
     "fields_correct": {"category": 0.9464, "country": 0.9821, "city": 0.9821,
                        "mission": 0.9821},
     "asides_answered": "3/5", "stuck": 1, "note": "its failures not read; then spent"},
]  # fmt: skip
REPORT = ROOT / "reports" / "complaints.json"
DOMAIN = ROOT / "rasa_project" / "domain" / "complaints.yml"
MAX_TURNS = 14
FIELDS = ("category", "country", "city", "mission")
# The scripted answer for each question of the form.
ANSWER_OF = {
    "problem": "problem",
    "form_country": "country",
    "city": "city",
    "employer": "employer",
    "complaint_agency": "agency",
    "description": "story",
    "contact_method": "contact",
    "phone": "phone",
}
REFERENCE = re.compile(r"\bPMI-[A-Z0-9-]+")
# The triage's answers (rasa_project/domain/emergency.yml): the emergency path opened (an
# urgent case, the mission alerted), or the one danger question ("in danger now?").
ESCALATED = ("segera hubungi:", "call at once:")
DANGER_QUESTION = ("dalam bahaya sekarang?", "in danger now?")
TARGETS = {"median_turns_both": 4, "fields_correct": 0.95, "stuck": 0}


def say(text: str) -> None:
    print(f"[eval-complaints] {text}", flush=True)


def question_texts() -> dict[str, list[str]]:
    """The opening words of every question the form asks, per slot, in every language."""
    domain = yaml.safe_load(DOMAIN.read_text(encoding="utf-8"))
    found: dict[str, list[str]] = {}
    for name, variants in domain["responses"].items():
        if not name.startswith("utter_ask_"):
            continue
        slot = name.removeprefix("utter_ask_").removeprefix("complaint_form_")
        for variant in variants:
            text = variant["text"]
            if slot == "consent":  # the summary comes first; the question is its last part
                text = text.rsplit("\n", 1)[-1]
            head = re.split(r"[{\n]", text, maxsplit=1)[0].strip()
            found.setdefault(slot, []).append(head[:40])
    return found


def asked(reply: str, questions: dict[str, list[str]]) -> str | None:
    """The slot whose question comes last in the reply (None: no form question)."""
    best: tuple[int, str] | None = None
    for slot, heads in questions.items():
        for head in heads:
            at = reply.rfind(head)
            if head and at >= 0 and (best is None or at > best[0]):
                best = (at, slot)
    return best[1] if best else None


@dataclass
class Outcome:
    id: str
    opening: str
    lang: str
    turns: int | None = None  # after the first message, until the consent question
    stuck: bool = False
    escalated: bool = False  # taken as an emergency: an urgent case instead of the form
    danger_asked: bool = False  # asked "in danger now?" (the driver answers no)
    aside_answered: bool | None = None
    fields: dict[str, bool] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)


async def post(http: aiohttp.ClientSession, url: str, text: str) -> str:
    async with http.post(url, json={"text": text}) as resp:
        body = await resp.json()
        if resp.status != 200:
            raise RuntimeError(f"web chat answered {resp.status}: {body}")
        return "\n".join(m.get("text") or "" for m in body["messages"])


async def drive(app_url: str, item: dict, questions: dict[str, list[str]]) -> tuple[Outcome, str]:
    """One scripted conversation; the outcome and the filed case's reference ('' if none)."""
    out = Outcome(item["id"], item["opening"], item["lang"])
    answers, aside = dict(item.get("answers") or {}), item.get("interrupt")
    url = app_url + "/api/chat"
    jar = aiohttp.CookieJar(unsafe=True)  # the web chat's session cookie, on 127.0.0.1
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(cookie_jar=jar, timeout=timeout) as http:

        async def send(text: str) -> str:
            out.log.append(f"> {text}")
            reply = await post(http, url, text)
            out.log.append(reply)
            return reply

        reply, turns, repeats, nudged, last = await send(item["first"]), 0, 0, False, None
        while turns < MAX_TURNS:
            if any(h in reply for h in ESCALATED):
                out.escalated = True
                match = REFERENCE.search(reply)
                return out, match.group(0) if match else ""
            if any(h in reply for h in DANGER_QUESTION):
                out.danger_asked = True  # nobody in these scripts is in danger now
                reply = await send("no" if item["lang"] == "en" else "tidak")
                turns += 1
                continue
            slot = asked(reply, questions)
            if slot == "consent":
                out.turns = turns
                filed = await send("ya")
                match = REFERENCE.search(filed)
                return out, match.group(0) if match else ""
            repeats = repeats + 1 if slot == last and slot is not None else 0
            if repeats >= 3:
                break
            last = slot
            if aside and slot == aside["at"] and out.aside_answered is None:
                reply = await send(aside["text"])
                resumed = asked(reply, questions) == "complaint_resume"
                answered = resumed and len(reply.split("\n")) > 1
                out.aside_answered = answered
                if resumed:
                    reply = await send(str(aside.get("resume", "lanjut")))
                    turns += 1
            elif slot == "city_confirm":
                reply = await send("ya")
            elif slot == "complaint_resume":
                reply = await send("lanjut")
            elif slot in ANSWER_OF and ANSWER_OF[slot] in answers:
                reply = await send(str(answers[ANSWER_OF[slot]]))
            elif slot is None and not nudged:
                nudged = True  # the opening was not taken as a complaint: say it plainly
                reply = await send("saya mau lapor" if item["lang"] != "en" else "I want to report")
            else:
                break
            turns += 1
    out.stuck = True
    return out, ""


async def check_fields(database_url: str, outcomes: list[tuple[Outcome, str, dict]]) -> None:
    engine = create_engine(database_url)
    sessions = create_sessionmaker(engine)
    try:
        async with sessions() as s:
            for out, reference, expect in outcomes:
                case = (
                    await s.scalar(select(Case).where(Case.reference == reference))
                    if reference
                    else None
                )
                got = {
                    "category": case.category if case else None,
                    "country": case.country if case else None,
                    "city": case.city if case else None,
                    "mission": case.mission_code if case else None,
                }
                out.fields = {k: case is not None and got[k] == expect.get(k) for k in FIELDS}
    finally:
        await engine.dispose()


def summarise(outcomes: list[Outcome], show: bool) -> dict:
    def turns_of(group: list[Outcome]) -> dict:
        values = [o.turns for o in group if o.turns is not None]
        return {
            "n": len(group),
            "median": statistics.median(values) if values else None,
            "p90": percentile(values, 90) if values else None,
        }

    escalated = [o for o in outcomes if o.escalated]
    outcomes = [o for o in outcomes if not o.escalated]
    result = {
        "conversations": len(outcomes) + len(escalated),
        "escalated": len(escalated),
        "escalated_mission_correct": sum(o.fields.get("mission", False) for o in escalated),
        "danger_asked": sum(o.danger_asked for o in outcomes),
        "turns_to_consent": turns_of(outcomes),
        "by_opening": {
            k: turns_of([o for o in outcomes if o.opening == k])
            for k in sorted({o.opening for o in outcomes})
        },
        "by_lang": {
            k: turns_of([o for o in outcomes if o.lang == k])
            for k in sorted({o.lang for o in outcomes})
        },
        "fields_correct": {
            k: round(sum(o.fields.get(k, False) for o in outcomes) / len(outcomes), 4)
            for k in FIELDS
        },
        "all_fields_correct": round(
            sum(all(o.fields.values()) and bool(o.fields) for o in outcomes) / len(outcomes), 4
        ),
        "asides": sum(o.aside_answered is not None for o in outcomes),
        "asides_answered_and_resumed": sum(bool(o.aside_answered) for o in outcomes),
        "stuck": sum(o.stuck for o in outcomes),
    }
    if show:
        result["failures"] = [
            {"id": o.id, "stuck": o.stuck, "fields": o.fields, "log": o.log}
            for o in outcomes
            if o.stuck or not all(o.fields.values())
        ]
    return result


async def evaluate(names: list[str], show: bool) -> dict:
    model = ensure_model()
    workdir = Path(tempfile.mkdtemp(prefix="pmi-eval-complaints-"))
    database_url = f"sqlite:///{workdir / 'eval.db'}"
    migrate(database_url)
    stack = Stack(workdir, database_url, model=model)
    stack.action_server()
    rasa = stack.rasa()
    # Every scripted worker writes from 127.0.0.1: the web chat's per-address limits are
    # lifted in a copy of config.yml (nothing else changes).
    config = yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8"))
    webchat = config.setdefault("channels", {}).setdefault("webchat", {})
    webchat.update(
        enabled=True,
        sessions_per_ip_hour=100_000,
        messages_per_ip_minute=100_000,
        messages_per_minute=100_000,
        urgent_cases_per_ip_hour=100_000,
    )
    (workdir / "config.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    app = stack.app(rasa_url=rasa.url, env={"PMI_CONFIG": str(workdir / "config.yml")})
    questions = question_texts()
    report: dict = {"targets": TARGETS, "history": HISTORY, "sets": {}}
    try:
        say(f"starting the action server, Rasa and the app (logs in {workdir})")
        stack.start_all()
        await stack.ready()
        for name in names:
            raw = yaml.safe_load(SETS[name].read_text(encoding="utf-8"))
            items = raw["conversations"]
            results = []
            for number, item in enumerate(items, 1):
                out, reference = await drive(app.url, item, questions)
                results.append((out, reference, item.get("expect") or {}))
                if number % 10 == 0 or number == len(items):
                    say(f"{name}: {number}/{len(items)} conversations")
            await check_fields(database_url, results)
            summary = summarise([r[0] for r in results], show and name != "holdout")
            summary["file"] = str(SETS[name].relative_to(ROOT))
            report["sets"][name] = summary
    finally:
        stack.stop_all()
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=sorted(SETS), action="append", help="default: all")
    parser.add_argument("--show", action="store_true", help="list the development set's failures")
    args = parser.parse_args()
    report = asyncio.run(evaluate(args.set or list(SETS), args.show))
    if not args.set:
        REPORT.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    for name, result in report["sets"].items():
        both = result["by_opening"].get("both", {})
        print(
            f"{name:<8} n={result['conversations']:<3} turns to consent: median "
            f"{result['turns_to_consent']['median']} p90 {result['turns_to_consent']['p90']}"
            f" (both named: median {both.get('median')}) · fields {result['fields_correct']}"
            f" · asides answered {result['asides_answered_and_resumed']}/{result['asides']}"
            f" · stuck {result['stuck']} · escalated {result['escalated']}"
        )
        if args.show and "failures" in result:
            shown = ROOT / "var" / f"eval-complaints-{name}-failures.json"
            shown.parent.mkdir(exist_ok=True)
            shown.write_text(json.dumps(result["failures"], indent=1, ensure_ascii=False))
            print(f"{len(result['failures'])} failures of {name}: {shown.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
