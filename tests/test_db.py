"""Engine behaviour the app relies on, against a real PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from pmi.db import create_engine
from tests.support import POSTGRES_URL, postgres_reachable

pytestmark = pytest.mark.skipif(not postgres_reachable(), reason="PostgreSQL not reachable")


async def test_a_connection_the_server_closed_is_replaced_at_checkout() -> None:
    """A restart or a terminated backend costs no failed request (no pre-ping either)."""
    engine = create_engine(POSTGRES_URL, pool_size=1, max_overflow=0)
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            victim = await conn.scalar(text("SELECT pg_backend_pid()"))
        # The pooled connection is idle now; the server ends it (as a restart would).
        async with admin.connect() as conn:
            assert await conn.scalar(text("SELECT pg_terminate_backend(:p)"), {"p": victim})
        await asyncio.sleep(0.2)  # the client sees the socket close
        async with engine.connect() as conn:
            replacement = await conn.scalar(text("SELECT pg_backend_pid()"))
        assert replacement != victim
    finally:
        await engine.dispose()
        await admin.dispose()


async def test_without_the_checkout_check_the_dead_connection_fails() -> None:
    """The check above is what saves the request: a raw pool hands the dead one out."""
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.ext.asyncio import create_async_engine

    from pmi.db import async_url

    engine = create_async_engine(async_url(POSTGRES_URL), pool_size=1, max_overflow=0)
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            victim = await conn.scalar(text("SELECT pg_backend_pid()"))
        async with admin.connect() as conn:
            await conn.scalar(text("SELECT pg_terminate_backend(:p)"), {"p": victim})
        await asyncio.sleep(0.2)
        with pytest.raises(DBAPIError):
            async with engine.connect() as conn:
                await conn.scalar(text("SELECT 1"))
    finally:
        await engine.dispose()
        await admin.dispose()
