"""The login throttle's counting: delays, forgetting, and exact counts under concurrency
(SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import secrets
from datetime import timedelta

import pytest
from sqlalchemy import delete, select

from pmi import login_throttle
from pmi.db import create_sessionmaker, utcnow
from pmi.login_models import LoginThrottle
from pmi.login_throttle import Key, Policy

POLICY = Policy(
    ip_failures=5,
    account_failures=20,
    max_delay=timedelta(seconds=900),
    forget=timedelta(hours=24),
    audit_every=timedelta(minutes=15),
)


@pytest.mark.parametrize(
    ("failures", "seconds"),
    [(0, None), (4, None), (5, 2), (6, 4), (9, 32), (14, 900), (10**6, 900)],
)
def test_the_wait_doubles_after_the_free_failures_up_to_the_cap(
    failures: int, seconds: int | None
) -> None:
    wait = login_throttle.delay(failures, 5, POLICY.max_delay)
    assert (wait.total_seconds() if wait else None) == seconds


def test_keys_never_hold_the_account_name() -> None:
    ip, account = login_throttle.keys_for(POLICY, "203.0.113.9", "ab" * 32)
    assert (ip.bucket, ip.free) == ("ip:203.0.113.9", 5)
    assert (account.bucket, account.free) == ("account:" + "ab" * 32, 20)


async def test_concurrent_tries_on_one_key_are_counted_exactly(database) -> None:
    """20 tries at once on a fresh key: exactly the 5 free ones go through."""
    sessions = create_sessionmaker(database.engine)
    key = Key(f"ip:test-{secrets.token_hex(6)}", 5)

    async def attempt() -> bool:
        async with sessions() as s, s.begin():
            return await login_throttle.charge(s, key, POLICY, utcnow())

    try:
        results = await asyncio.gather(*(attempt() for _ in range(20)))
        assert results.count(True) == 5
        async with sessions() as s:
            row = await s.get(LoginThrottle, key.bucket)
        assert row is not None and row.failures == 5 and row.blocked_until is not None
    finally:
        async with sessions() as s, s.begin():
            await s.execute(delete(LoginThrottle).where(LoginThrottle.bucket == key.bucket))


async def test_a_good_step_gives_its_try_back_and_old_keys_are_forgotten(sessions) -> None:
    key = Key(f"ip:test-{secrets.token_hex(6)}", 2)
    now = utcnow()
    async with sessions() as s:
        for _ in range(2):
            assert await login_throttle.charge(s, key, POLICY, now)
        assert not await login_throttle.charge(s, key, POLICY, now)  # waiting 2 s
        assert await login_throttle.wait_left(s, [key], now) == timedelta(seconds=2)
        await login_throttle.give_back(s, [key])
        row = await s.get(LoginThrottle, key.bucket)
        await s.refresh(row)
        assert row is not None and (row.failures, row.blocked_until) == (1, None)
        assert await login_throttle.audit_due(s, [key], POLICY, now)
        assert not await login_throttle.audit_due(s, [key], POLICY, now + timedelta(minutes=1))
        # A day later the key starts again from one failure, or is pruned.
        later = now + timedelta(hours=25)
        assert await login_throttle.charge(s, key, POLICY, later)
        await s.refresh(row)
        assert row.failures == 1
        await login_throttle.prune(s, POLICY, later + timedelta(hours=25))
        left = await s.scalar(select(LoginThrottle).where(LoginThrottle.bucket == key.bucket))
        assert left is None
