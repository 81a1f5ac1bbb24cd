"""Parse messages with a trained Rasa model (runs in .venv-rasa, Python 3.10).

Usage: python scripts/rasa_parse.py MODEL IN_JSON OUT_JSON

IN_JSON is a list of texts; OUT_JSON gets, per text, the intent, the top of the ranking,
the entities and the triage decision (absent for models without the triage component).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path

from rasa.core.agent import Agent
from rasa.utils.common import configure_logging_and_warnings
from rasa.utils.log_utils import configure_structlog

PROGRESS_EVERY = 100


async def main(model: str, source: str, target: str) -> None:
    configure_logging_and_warnings(logging.WARNING)
    configure_structlog(logging.WARNING)
    agent = Agent.load(model)
    texts = json.loads(Path(source).read_text(encoding="utf-8"))  # noqa: ASYNC240 - a script
    parsed = []
    for i, text in enumerate(texts, 1):
        result = await agent.parse_message(text)
        parsed.append(
            {
                "intent": (result.get("intent") or {}).get("name"),
                "confidence": (result.get("intent") or {}).get("confidence"),
                "ranking": [
                    (r.get("name"), r.get("confidence"))
                    for r in (result.get("intent_ranking") or [])[:5]
                ],
                "entities": [
                    {"entity": e.get("entity"), "value": e.get("value")}
                    for e in result.get("entities") or []
                ],
                "triage": result.get("triage"),
            }
        )
        if i % PROGRESS_EVERY == 0:
            print(f"  parsed {i}/{len(texts)}", flush=True)
    Path(target).write_text(  # noqa: ASYNC240 - a script, nothing else runs
        json.dumps(parsed, ensure_ascii=False), encoding="utf-8"
    )


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
