"""Database engine and session factories (SQLite by default, PostgreSQL in production).

Nothing is created at import: callers build an engine at start-up and dispose of it
at shutdown.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import DateTime, MetaData, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from pmi.settings import ROOT

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):  # type: ignore[no-untyped-def]
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use pmi.db.utcnow()")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):  # type: ignore[no-untyped-def]
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def private_file(path: Path) -> None:
    """Create `path` (and its folder) readable by the owner only, if it does not exist.

    SQLite gives its -wal and -shm files the permissions of the database file.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    os.chmod(path, 0o600)


async def checkpoint(engine: AsyncEngine) -> None:
    """SQLite: move the write-ahead log into the file and truncate it (after an erasure)."""
    if engine.dialect.name != "sqlite":
        return
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        await raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]


async def ping(engine: AsyncEngine) -> None:
    """Raise if the database does not answer (the readiness probe)."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


def async_url(url: str) -> str:
    """Return `url` with an async driver; relative SQLite paths are taken from the repo root."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
        if parsed.database and parsed.database != ":memory:":
            path = Path(parsed.database)
            if not path.is_absolute():
                path = ROOT / path
            private_file(path)
            parsed = parsed.set(database=str(path))
    elif backend == "postgresql":
        parsed = parsed.set(drivername="postgresql+asyncpg")
    else:
        raise ValueError(f"unsupported database backend {backend!r}: use sqlite or postgresql")
    return parsed.render_as_string(hide_password=False)


def create_engine(url: str, **kwargs: object) -> AsyncEngine:
    """Create an async engine; SQLite gets foreign keys, WAL and a busy timeout.

    PostgreSQL connections are checked for life at checkout without a round trip: asyncpg
    notices at once when the server closes a connection (a restart, a terminated backend),
    and such a connection is replaced. SQLAlchemy's `pool_pre_ping` would instead cost
    three round trips (BEGIN, a query, ROLLBACK) per transaction, a large part of the
    app's CPU per message. A connection that dies silently fails its first statement, the
    pool is invalidated, and every caller retries (nothing is acknowledged unstored).
    """
    engine = create_async_engine(async_url(url), **kwargs)
    if engine.dialect.name == "postgresql":

        @event.listens_for(engine.sync_engine, "checkout")
        def _closed_by_server(_dbapi_conn, record, _proxy) -> None:  # type: ignore[no-untyped-def]
            driver = record.driver_connection
            if driver is not None and driver.is_closed():
                raise DisconnectionError("connection closed by the server")

    if engine.dialect.name == "sqlite":
        # pysqlite's own transaction handling breaks SAVEPOINTs (used for de-duplication):
        # take over BEGIN as SQLAlchemy's documentation recommends.
        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_connect(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=10000")
            # Deleted content is overwritten with zeros, so an erasure leaves no readable text
            # in the file (with `checkpoint` after it, none in the write-ahead log either).
            cur.execute("PRAGMA secure_delete=ON")
            cur.close()

        # IMMEDIATE: take the write lock at the start, so that two transactions never
        # deadlock upgrading a read lock (SQLite then fails at once, whatever the timeout).
        @event.listens_for(engine.sync_engine, "begin")
        def _sqlite_begin(conn) -> None:  # type: ignore[no-untyped-def]
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
