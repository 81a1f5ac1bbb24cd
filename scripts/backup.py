"""Back up and restore the database (and the media files) with one command each.

    make backup                      # -> var/backups/pmi-backup-20261128T061500Z.tar
    make restore FILE=var/backups/pmi-backup-20261128T061500Z.tar [FORCE=1]

A backup is one tar file: `manifest.json` (backend, time, Alembic revision, row counts),
the database (SQLite: a consistent copy made with SQLite's online backup API, gzipped;
PostgreSQL: `pg_dump --format=custom`) and `media/` (workers' photos, documents and voice
notes) when the media directory exists. It holds personal data: keep it encrypted and
delete it as the retention periods say.

Restore refuses to overwrite a database that holds data unless `--force` is given; stop the
app first. PostgreSQL needs `pg_dump`/`pg_restore` at least as new as the server: they are
looked for in `$PG_BIN`, in `/usr/lib/postgresql/<server major>/bin`, then on `PATH`.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

import pmi.models  # noqa: F401 - registers the tables in Base.metadata
from pmi.db import Base, create_engine
from pmi.settings import ROOT, load_settings

FORMAT = 1
BACKUP_DIR = ROOT / "var" / "backups"
# Tables whose rows make a database "not empty" (restore then needs --force).
DATA_TABLES = ("contacts", "cases", "inbound_messages", "outbound_messages", "staff_users")
COUNTED = ("cases", "contacts", "inbound_messages", "case_events")


class BackupError(RuntimeError):
    """The backup or restore could not be done; the message says why and what to do."""


@dataclass(frozen=True)
class Target:
    url: str
    backend: str  # sqlite | postgresql
    sqlite_path: Path | None = None
    libpq_url: str | None = None  # postgresql://... for pg_dump / pg_restore


def target(url: str) -> Target:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise BackupError("an in-memory SQLite database cannot be backed up")
        path = Path(parsed.database)
        return Target(url, backend, sqlite_path=path if path.is_absolute() else ROOT / path)
    if backend == "postgresql":
        libpq = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        return Target(url, backend, libpq_url=libpq)
    raise BackupError(f"unsupported database backend {backend!r}")


# --- database queries -------------------------------------------------------------------


def _sqlite_rows(path: Path, tables: tuple[str, ...]) -> dict[str, int]:
    if not path.exists():
        return {}
    with closing(sqlite3.connect(path)) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        counts = {}
        for table in tables:
            if table in names:  # names come from the fixed tuple above, never from input
                counts[table] = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]  # noqa: S608
        return counts


async def _pg_query(url: str, tables: tuple[str, ...]) -> tuple[dict[str, int], int, str | None]:
    """Row counts of existing tables, the server's major version and the Alembic revision."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            major = int(await conn.scalar(text("SHOW server_version_num"))) // 10000
            existing = set(
                await conn.scalars(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
                )
            )
            counts = {}
            for table in tables:
                if table in existing:
                    sql = select(func.count()).select_from(Base.metadata.tables[table])
                    counts[table] = int(await conn.scalar(sql) or 0)
            revision = None
            if "alembic_version" in existing:
                revision = await conn.scalar(text("SELECT version_num FROM alembic_version"))
            return counts, major, revision
    finally:
        await engine.dispose()


def row_counts(url: str, tables: tuple[str, ...] = COUNTED) -> dict[str, int]:
    t = target(url)
    if t.backend == "sqlite":
        assert t.sqlite_path is not None
        return _sqlite_rows(t.sqlite_path, tables)
    return asyncio.run(_pg_query(url, tables))[0]


def _sqlite_revision(path: Path) -> str | None:
    with closing(sqlite3.connect(path)) as conn:
        try:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.OperationalError:
            return None
        return row[0] if row else None


# --- PostgreSQL client tools ------------------------------------------------------------


def _tool_major(path: str) -> int | None:
    out = subprocess.run([path, "--version"], capture_output=True, text=True, check=False).stdout
    match = re.search(r"(\d+)(?:\.\d+)?", out)
    return int(match.group(1)) if match else None


def pg_tool(name: str, server_major: int) -> str:
    """A `pg_dump`/`pg_restore` at least as new as the server (older ones refuse to work)."""
    candidates = []
    if os.environ.get("PG_BIN"):
        candidates.append(str(Path(os.environ["PG_BIN"]) / name))
    candidates.append(f"/usr/lib/postgresql/{server_major}/bin/{name}")
    candidates.append(shutil.which(name) or "")
    found = []
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            major = _tool_major(candidate)
            if major is not None and major >= server_major:
                return candidate
            found.append(f"{candidate} ({major})")
    raise BackupError(
        f"{name} for PostgreSQL {server_major} or newer not found (found: "
        f"{', '.join(found) or 'none'}); install postgresql-client-{server_major} "
        "or set PG_BIN to its bin directory"
    )


def _run(cmd: list[str], what: str) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BackupError(f"{what} failed: {result.stderr.strip()[-2000:]}")


# --- backup -----------------------------------------------------------------------------


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(datetime.now(UTC).timestamp())
    tar.addfile(info, io.BytesIO(data))


def create_backup(url: str, out_dir: Path = BACKUP_DIR, media_dir: Path | None = None) -> Path:
    """Write one backup file and return its path."""
    t = target(url)
    now = datetime.now(UTC)
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / f"pmi-backup-{now.strftime('%Y%m%dT%H%M%S%fZ')}.tar"
    partial = final.with_suffix(".tar.partial")
    with tempfile.TemporaryDirectory() as tmp:
        if t.backend == "sqlite":
            assert t.sqlite_path is not None
            if not t.sqlite_path.exists():
                raise BackupError(f"no database at {t.sqlite_path}")
            copy = Path(tmp) / "copy.db"
            with (
                closing(sqlite3.connect(t.sqlite_path)) as src,
                closing(sqlite3.connect(copy)) as dst,
            ):
                src.backup(dst)  # consistent even while the app writes
            counts, revision = _sqlite_rows(copy, COUNTED), _sqlite_revision(copy)
            member, payload = "database.sqlite.gz", Path(tmp) / "database.sqlite.gz"
            with copy.open("rb") as raw, gzip.open(payload, "wb") as packed:
                shutil.copyfileobj(raw, packed)
        else:
            assert t.libpq_url is not None
            counts, major, revision = asyncio.run(_pg_query(url, COUNTED))
            member, payload = "database.pgdump", Path(tmp) / "database.pgdump"
            dump = pg_tool("pg_dump", major)
            _run(
                [dump, "--format=custom", "--no-owner", "--no-privileges",
                 f"--file={payload}", f"--dbname={t.libpq_url}"],
                "pg_dump",
            )  # fmt: skip
        manifest = {
            "format": FORMAT,
            "backend": t.backend,
            "created_at": now.isoformat(),
            "alembic_revision": revision,
            "counts": counts,
            "media": bool(media_dir and media_dir.is_dir()),
        }
        with tarfile.open(partial, "w") as tar:
            _add_bytes(tar, "manifest.json", json.dumps(manifest, indent=2).encode())
            tar.add(payload, arcname=member)
            if media_dir and media_dir.is_dir():
                tar.add(media_dir, arcname="media")
    partial.chmod(0o600)  # personal data
    partial.rename(final)
    return final


# --- restore ----------------------------------------------------------------------------


def _safe_member(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts:
        raise BackupError(f"unsafe path in backup: {name!r}")
    return path


def read_manifest(tar: tarfile.TarFile) -> dict:
    try:
        member = tar.extractfile("manifest.json")
    except KeyError:
        raise BackupError("not a backup of this project: manifest.json missing") from None
    assert member is not None
    manifest = json.loads(member.read())
    if manifest.get("format") != FORMAT:
        raise BackupError(f"unknown backup format {manifest.get('format')!r}")
    return manifest


def _media_not_empty(media_dir: Path | None) -> bool:
    return bool(media_dir and media_dir.is_dir() and any(p.is_file() for p in media_dir.rglob("*")))


def restore_backup(
    file: Path, url: str, *, force: bool = False, media_dir: Path | None = None
) -> dict[str, int]:
    """Restore a backup into the database at `url`; return the restored row counts."""
    t = target(url)
    with tarfile.open(file, "r") as tar:
        manifest = read_manifest(tar)
        if manifest["backend"] != t.backend:
            raise BackupError(
                f"this backup is of a {manifest['backend']} database, the target is {t.backend}"
            )
        existing = row_counts(url, DATA_TABLES)
        if not force and (any(existing.values()) or _media_not_empty(media_dir)):
            held = ", ".join(f"{k}: {v}" for k, v in existing.items() if v) or "media files"
            raise BackupError(
                f"the target database is not empty ({held}); "
                "stop the app and restore with --force (FORCE=1) to replace it"
            )
        with tempfile.TemporaryDirectory() as tmp:
            if t.backend == "sqlite":
                _restore_sqlite(tar, t, Path(tmp))
            else:
                _restore_postgres(tar, t, Path(tmp))
            if media_dir is not None:
                _restore_media(tar, media_dir)
    return row_counts(url)


def _restore_sqlite(tar: tarfile.TarFile, t: Target, tmp: Path) -> None:
    assert t.sqlite_path is not None
    packed = tar.extractfile("database.sqlite.gz")
    if packed is None:
        raise BackupError("the backup has no SQLite database")
    copy = tmp / "restore.db"
    with gzip.open(packed, "rb") as raw, copy.open("wb") as out:
        shutil.copyfileobj(raw, out)
    with closing(sqlite3.connect(copy)) as src:
        if src.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            raise BackupError("the database in the backup is damaged")
        t.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(t.sqlite_path)) as dst:
            src.backup(dst)  # replaces every page of the target, WAL included


def _restore_postgres(tar: tarfile.TarFile, t: Target, tmp: Path) -> None:
    assert t.libpq_url is not None
    dump = tmp / "database.pgdump"
    member = tar.extractfile("database.pgdump")
    if member is None:
        raise BackupError("the backup has no PostgreSQL dump")
    with dump.open("wb") as out:
        shutil.copyfileobj(member, out)
    _, major, _ = asyncio.run(_pg_query(t.url, ()))
    restore = pg_tool("pg_restore", major)
    _run(
        [restore, "--clean", "--if-exists", "--no-owner", "--no-privileges",
         "--single-transaction", "--exit-on-error", f"--dbname={t.libpq_url}", str(dump)],
        "pg_restore",
    )  # fmt: skip


def _restore_media(tar: tarfile.TarFile, media_dir: Path) -> None:
    for member in tar.getmembers():
        path = _safe_member(member.name)
        if path.parts[:1] != ("media",) or not member.isfile():
            continue
        dest = media_dir.joinpath(*path.parts[1:])
        dest.parent.mkdir(parents=True, exist_ok=True)
        source = tar.extractfile(member)
        assert source is not None
        with dest.open("wb") as out:
            shutil.copyfileobj(source, out)


# --- command line -----------------------------------------------------------------------


def _default_media() -> Path | None:
    media = getattr(load_settings(), "media", None)
    return getattr(media, "dir", None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.backup", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("backup", help="write a backup file")
    make.add_argument("--dir", type=Path, default=BACKUP_DIR)
    undo = sub.add_parser("restore", help="restore a backup file")
    undo.add_argument("file", type=Path)
    undo.add_argument("--force", action="store_true", help="replace a database holding data")
    args = parser.parse_args(argv)
    url = load_settings().database.url
    media = _default_media()
    try:
        if args.command == "backup":
            path = create_backup(url, args.dir, media)
            with tarfile.open(path) as tar:
                counts = read_manifest(tar)["counts"]
            print(f"backup written: {path}")
        else:
            counts = restore_backup(args.file, url, force=args.force, media_dir=media)
            print(f"restored {args.file} into {target(url).backend}")
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(", ".join(f"{k}: {v}" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
