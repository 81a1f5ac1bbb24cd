"""Per-contact locks: one contact's messages are processed by one task at a time.

On PostgreSQL the lock spans processes, so several app processes can take webhooks
behind a load balancer: it is a session-level advisory lock, taken with
`pg_try_advisory_lock` on a connection that is held while the contact is processed and
unlocked in `finally`. A process that dies drops its connection, and PostgreSQL drops the
lock with it. A task that finds the lock taken waits and tries again without holding a
connection, so waiting for a busy contact never starves the pool; when it gets the lock,
the relay's loop picks up whatever is still pending, so no message is left waiting for the
retry loop. The key is (hash of the schema, contact id): two deployments sharing one
database in different schemas do not block each other.

On SQLite (one app process: SQLite is not for scaled-out deployments) the lock is an
`asyncio.Lock` in the process. Both backends use the in-process lock first, so tasks of
one process queue there and only one of them polls PostgreSQL. Entries are dropped when
nobody holds or waits for them, so memory does not grow with the number of contacts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

logger = logging.getLogger(__name__)

NAMESPACE = "pmi.contact:"
INT4_MAX = 2**31 - 1
# Lock connections held at once per process. Each holder also needs a session connection
# now and then; with SQLAlchemy's default pool (5 + 10 overflow) holders can never take
# every connection and wait for one another.
MAX_HOLDERS = 5
_TRY = text("SELECT pg_try_advisory_lock(hashtext(:ns || current_schema()), :key)")
_UNLOCK = text("SELECT pg_advisory_unlock(hashtext(:ns || current_schema()), :key)")


@dataclass
class _Entry:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class ContactLocks:
    """`async with locks[contact_id]:` holds that contact's lock (see the module docstring)."""

    def __init__(
        self,
        engine: AsyncEngine | None = None,
        *,
        max_holders: int = MAX_HOLDERS,
        poll_seconds: tuple[float, float] = (0.01, 0.2),
    ) -> None:
        """`engine`: a PostgreSQL engine for cross-process locks; None: in-process only."""
        if engine is not None and engine.dialect.name != "postgresql":
            raise ValueError("cross-process contact locks need PostgreSQL")
        self._engine = engine
        self._local: dict[int, _Entry] = {}
        self._holders = asyncio.Semaphore(max_holders)
        self._poll_min, self._poll_max = poll_seconds

    @classmethod
    def for_sessions(cls, sessions: async_sessionmaker[AsyncSession]) -> ContactLocks:
        """Cross-process locks when the sessions are bound to a PostgreSQL engine."""
        bind = sessions.kw.get("bind")
        if isinstance(bind, AsyncEngine) and bind.dialect.name == "postgresql":
            return cls(bind)
        return cls()

    @property
    def cross_process(self) -> bool:
        return self._engine is not None

    def __len__(self) -> int:
        """Contacts whose lock is held or awaited in this process."""
        return len(self._local)

    def __getitem__(self, contact_id: int) -> contextlib.AbstractAsyncContextManager[None]:
        return self.hold(contact_id)

    @contextlib.asynccontextmanager
    async def hold(self, contact_id: int) -> AsyncIterator[None]:
        """Hold the contact's lock for the body of the `async with`."""
        if not 0 <= contact_id <= INT4_MAX:
            raise ValueError("contact ids are int4")
        entry = self._local.setdefault(contact_id, _Entry())
        entry.users += 1
        try:
            async with entry.lock:
                if self._engine is None:
                    yield
                else:
                    async with self._advisory(self._engine, contact_id):
                        yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._local[contact_id]

    @contextlib.asynccontextmanager
    async def _advisory(self, engine: AsyncEngine, contact_id: int) -> AsyncIterator[None]:
        conn = await self._acquire(engine, contact_id)
        try:
            yield
        finally:
            # Shielded: a cancelled task must still unlock before its connection is reused.
            await asyncio.shield(self._release(conn, contact_id))

    async def _acquire(self, engine: AsyncEngine, contact_id: int) -> AsyncConnection:
        """Try the advisory lock until it is ours; hold no connection between tries."""
        delay = self._poll_min
        while True:
            await self._holders.acquire()
            conn: AsyncConnection | None = None
            try:
                conn = await engine.connect()
                # Autocommit: the connection is not left "idle in transaction" while held.
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                if await conn.scalar(_TRY, {"ns": NAMESPACE, "key": contact_id}):
                    return conn
            except BaseException:
                if conn is not None:
                    await conn.close()
                self._holders.release()
                raise
            await conn.close()
            self._holders.release()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._poll_max)

    async def _release(self, conn: AsyncConnection, contact_id: int) -> None:
        try:
            unlocked = await conn.scalar(_UNLOCK, {"ns": NAMESPACE, "key": contact_id})
            if not unlocked:  # the connection was replaced under us: never reuse it
                logger.warning("contact_id=%s: advisory lock was not held at unlock", contact_id)
                await conn.invalidate()
        except (DBAPIError, OSError) as exc:
            # The connection is gone, and the lock with it on the server.
            logger.warning("contact_id=%s: unlock failed: %s", contact_id, type(exc).__name__)
            with contextlib.suppress(DBAPIError, OSError):
                await conn.invalidate()
        finally:
            await conn.close()
            self._holders.release()
