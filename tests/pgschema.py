"""A migrated PostgreSQL schema private to a test, for tests that commit (several engines)."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from pmi.db import create_engine
from tests.support import POSTGRES_URL, migrate


@dataclass
class Schema:
    url: str
    name: str

    @property
    def connect_args(self) -> dict[str, Any]:
        return {"server_settings": {"search_path": self.name}}

    def engine(self, **kwargs: Any) -> AsyncEngine:
        """A new engine on the schema: one per simulated app process."""
        return create_engine(self.url, connect_args=self.connect_args, **kwargs)


@contextlib.asynccontextmanager
async def private_schema(prefix: str = "pmi_t") -> AsyncIterator[Schema]:
    """Create and migrate a schema; drop it (and everything committed in it) afterwards."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = create_engine(POSTGRES_URL)
    try:
        async with admin.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{name}"'))
        found = Schema(POSTGRES_URL, name)
        engine = found.engine()
        try:
            await migrate(engine)
        finally:
            await engine.dispose()
        yield found
    finally:
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        await admin.dispose()
