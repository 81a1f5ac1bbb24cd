"""`make import-agencies FILE=registry.csv`: replace the P3MI registry the bot checks against."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from pmi.agencies import RegistryError, Row, parse_registry, replace_registry
from pmi.db import create_engine, create_sessionmaker
from pmi.settings import load_settings


async def store(rows: list[Row], source: str) -> str:
    engine = create_engine(load_settings().database.url)
    try:
        async with create_sessionmaker(engine)() as s, s.begin():
            record = await replace_registry(s, rows, source)
    finally:
        await engine.dispose()
    return (
        f"imported {record.row_count} agencies from {source} at {record.imported_at:%Y-%m-%d} (UTC)"
    )


def main(path: Path) -> int:
    try:
        rows = parse_registry(path.read_bytes())
    except (OSError, RegistryError) as exc:
        print(f"import-agencies: {path}: {exc}", file=sys.stderr)
        return 1
    print(asyncio.run(store(rows, path.name)))
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make import-agencies FILE=path/to/registry.csv")
    sys.exit(main(Path(sys.argv[1])))
