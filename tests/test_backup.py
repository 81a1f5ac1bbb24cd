"""Backup and restore: cases created, backed up, the database wiped, restored, every case found.

SQLite in a temporary file; PostgreSQL in a scratch database created and dropped here.
"""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
import tarfile
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from pmi import messages
from pmi.cases import create_case
from pmi.db import create_engine, create_sessionmaker
from pmi.missions import Missions
from pmi.models import Case
from pmi.settings import load_settings
from scripts import backup
from tests.support import POSTGRES_URL, migrate, postgres_reachable


async def _fill(url: str, count: int = 5) -> set[str]:
    """Workers with messages and cases; return the case references."""
    missions = Missions.load(load_settings().content.missions_file)
    engine = create_engine(url)
    try:
        async with create_sessionmaker(engine)() as s, s.begin():
            references = set()
            for i in range(count):
                contact = await messages.get_or_create_contact(s, "telegram", str(1000 + i))
                await messages.store_inbound(s, contact, "telegram", f"u{i}", f"pesan {i}")
                case = await create_case(
                    s,
                    conversation_id=contact.public_id,
                    category="unpaid_wages",
                    mission=missions.default,
                    description=f"cerita {i}",
                )
                references.add(case.reference)
            return references
    finally:
        await engine.dispose()


async def _references(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with create_sessionmaker(engine)() as s:
            return set(await s.scalars(select(Case.reference)))
    finally:
        await engine.dispose()


async def test_sqlite_backup_restore(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'pmi.db'}"
    engine = create_engine(url)
    await migrate(engine)
    await engine.dispose()
    references = await _fill(url)
    media = tmp_path / "media"
    (media / "ab").mkdir(parents=True)
    (media / "ab" / "photo-key").write_bytes(b"\x89PNG fake photo")

    path = await asyncio.to_thread(backup.create_backup, url, tmp_path / "backups", media)
    assert path.name.startswith("pmi-backup-") and path.suffix == ".tar"
    assert path.stat().st_mode & 0o077 == 0  # personal data: owner only
    with tarfile.open(path) as tar:
        manifest = backup.read_manifest(tar)
    assert manifest["backend"] == "sqlite" and manifest["counts"]["cases"] == 5

    # A database holding data is not overwritten without --force.
    with pytest.raises(backup.BackupError, match="not empty"):
        await asyncio.to_thread(backup.restore_backup, path, url, media_dir=media)

    # Wipe: the database file and the media are gone.
    for suffix in ("", "-wal", "-shm"):
        Path(f"{tmp_path / 'pmi.db'}{suffix}").unlink(missing_ok=True)
    (media / "ab" / "photo-key").unlink()
    counts = await asyncio.to_thread(backup.restore_backup, path, url, media_dir=media)
    assert counts["cases"] == 5 and counts["inbound_messages"] == 5
    assert await _references(url) == references
    assert (media / "ab" / "photo-key").read_bytes() == b"\x89PNG fake photo"
    with closing(sqlite3.connect(tmp_path / "pmi.db")) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    # --force replaces a database that changed since the backup.
    await _fill(url, 2)
    await asyncio.to_thread(backup.restore_backup, path, url, force=True, media_dir=media)
    assert await _references(url) == references


async def test_restore_rejects_other_files(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.tar"
    with tarfile.open(bogus, "w") as tar:
        tar.add(__file__, arcname="something.py")
    url = f"sqlite:///{tmp_path / 'x.db'}"
    with pytest.raises(backup.BackupError, match="manifest"):
        await asyncio.to_thread(backup.restore_backup, bogus, url)


@pytest.fixture
async def scratch_postgres() -> AsyncIterator[str]:
    """A PostgreSQL database of its own (pg_dump works on whole databases)."""
    if not postgres_reachable():
        pytest.skip("PostgreSQL not reachable")
    name = f"pmi_backup_{secrets.token_hex(4)}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


@pytest.mark.postgres
async def test_postgresql_backup_restore(scratch_postgres: str, tmp_path: Path) -> None:
    url = scratch_postgres
    engine = create_engine(url)
    await migrate(engine)
    await engine.dispose()
    references = await _fill(url)

    path = await asyncio.to_thread(backup.create_backup, url, tmp_path)
    with tarfile.open(path) as tar:
        manifest = backup.read_manifest(tar)
    assert manifest["backend"] == "postgresql" and manifest["alembic_revision"]

    with pytest.raises(backup.BackupError, match="not empty"):
        await asyncio.to_thread(backup.restore_backup, path, url)
    # Wipe everything, schema included.
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()
    assert await asyncio.to_thread(backup.row_counts, url) == {}

    counts = await asyncio.to_thread(backup.restore_backup, path, url)
    assert counts["cases"] == 5 and counts["contacts"] == 5
    assert await _references(url) == references

    # A forced restore over a changed database brings back exactly the backup.
    await _fill(url, 2)
    await asyncio.to_thread(backup.restore_backup, path, url, force=True)
    assert await _references(url) == references


def test_client_tools_must_be_as_new_as_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PG_BIN", raising=False)
    with pytest.raises(backup.BackupError, match="postgresql-client-99"):
        backup.pg_tool("pg_dump", 99)
