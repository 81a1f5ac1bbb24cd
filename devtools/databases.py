"""Databases for a stack: migrated to the Alembic head, or a fresh PostgreSQL database."""

from __future__ import annotations

import os
import secrets
import subprocess

from devtools.model import ROOT


def migrate(database_url: str) -> None:
    """Bring a database to the current Alembic head (subprocess: Alembic's own env)."""
    env = dict(os.environ, DATABASE_URL=database_url, PYTHONPATH=str(ROOT))
    subprocess.run(
        [str(ROOT / ".venv" / "bin" / "alembic"), "upgrade", "head"],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


async def _as_admin(admin_url: str, statement: str) -> None:
    """Run one statement outside a transaction (CREATE/DROP DATABASE) on `admin_url`."""
    from sqlalchemy import text

    from pmi.db import create_engine

    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def create_postgres_database(admin_url: str, name: str | None = None) -> str:
    """Create a fresh PostgreSQL database next to `admin_url`'s; return its URL."""
    from sqlalchemy.engine import make_url

    name = name or f"pmi_bench_{secrets.token_hex(4)}"
    await _as_admin(admin_url, f'CREATE DATABASE "{name}"')
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


async def drop_postgres_database(admin_url: str, url: str) -> None:
    """Drop the database of `url` (its sessions are ended first)."""
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    await _as_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
