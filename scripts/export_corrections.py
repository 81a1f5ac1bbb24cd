"""Write the console's intent corrections as Rasa NLU training data, for review.

`make export-corrections` writes `var/corrections/nlu_corrections_<date>.yml` (or `--out`).
The file is deliberately outside `rasa_project/data`: a person reviews it and copies the
good examples into the training data, which then retrains the model.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime
from pathlib import Path

from pmi import corrections
from pmi.db import create_engine, create_sessionmaker
from pmi.settings import ROOT, load_settings

DEFAULT_DIR = ROOT / "var" / "corrections"


async def export(out_dir: Path, since: datetime | None = None) -> tuple[Path, int]:
    """Write the file; return its path and the number of corrections in it."""
    engine = create_engine(load_settings().database.url)
    try:
        async with create_sessionmaker(engine)() as s:
            rows = await corrections.corrections(s, since)
    finally:
        await engine.dispose()
    now = datetime.now(UTC)
    path = out_dir / f"nlu_corrections_{now.strftime('%Y-%m-%d')}.yml"
    await asyncio.to_thread(_write, path, corrections.to_nlu_yaml(rows, now))
    return path, len(rows)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_DIR, help="directory to write to")
    parser.add_argument("--since", help="only corrections marked on or after YYYY-MM-DD")
    args = parser.parse_args()
    since = datetime.strptime(args.since, "%Y-%m-%d").replace(tzinfo=UTC) if args.since else None
    path, count = asyncio.run(export(args.out, since))
    print(f"{count} corrections written to {path}")


if __name__ == "__main__":
    main()
