"""`make retention`: one retention round now, as the app runs it on its schedule.

Deleted workers' Rasa conversations are queued for deletion (the app's erasure worker
deletes them from Rasa's tracker store, retrying until Rasa confirms); Rasa's events older
than the retention period are pruned now when Rasa is reachable (`RASA_URL`, `RASA_TOKEN`
as for `make run`), else at the app's next round.

Usage: python -m scripts.retention [--dry-run]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Sequence

import aiohttp

from bot.rasa_client import RasaClient
from pmi.db import create_engine, create_sessionmaker
from pmi.retention import RetentionReport, apply_retention, run_retention
from pmi.settings import load_settings


async def _run(dry_run: bool) -> RetentionReport:
    settings = load_settings()
    engine = create_engine(settings.database.url)
    try:
        sessions = create_sessionmaker(engine)
        if dry_run:
            async with sessions() as s:
                report = await apply_retention(s, settings.retention)
                await s.rollback()
            return report
        async with aiohttp.ClientSession() as http:
            rasa = RasaClient(
                http, settings.rasa.url, settings.rasa.timeout_seconds, settings.rasa.token
            )
            return await run_retention(sessions, settings.retention, rasa.prune)
    finally:
        await engine.dispose()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m scripts.retention", description=__doc__)
    parser.add_argument("--dry-run", action="store_true", help="count, change nothing")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    report = asyncio.run(_run(args.dry_run))
    prefix = "would be " if args.dry_run else ""
    print(
        f"inbound messages {prefix}deleted: {report.inbound_deleted}\n"
        f"outbound messages {prefix}deleted: {report.outbound_deleted}\n"
        f"contacts {prefix}deleted: {report.contacts_deleted}\n"
        f"cases {prefix}anonymised: {report.cases_anonymised}"
    )


if __name__ == "__main__":
    main()
