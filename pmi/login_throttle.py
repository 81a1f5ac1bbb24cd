"""Login throttling by client address and by account, with growing delays.

Each try is counted before the password or code is checked (so concurrent tries cannot
slip past the count) against two keys: the client's address (IPv6: its /64) and a keyed
hash of the account name (`ConsoleKeys.account_hash`; the typed name is never stored).
A key may fail `free` times; after that, each further failure makes the key wait 2, 4, 8
... seconds (at most `max_delay`) before its next try. A good step gives its count back,
and a complete login clears the account's key. No key is ever locked for good: the right
password from another address works while one address waits, and an account attacked
from many addresses only slows down.

One row per key: an atomic `INSERT ... ON CONFLICT DO UPDATE ... RETURNING` on SQLite and
PostgreSQL, refused (no row returned) while the key is waiting. Keys without failures for
`forget` are pruned, so the table holds at most the keys that failed in that time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from pmi.login_models import LoginThrottle
from pmi.settings import ConsoleSettings

MAX_DOUBLINGS = 30  # 2**30 seconds is far above any sensible cap


@dataclass(frozen=True)
class Policy:
    ip_failures: int
    account_failures: int
    max_delay: timedelta
    forget: timedelta
    audit_every: timedelta

    @classmethod
    def from_settings(cls, console: ConsoleSettings) -> Policy:
        return cls(
            ip_failures=console.login_ip_failures,
            account_failures=console.login_account_failures,
            max_delay=timedelta(seconds=console.login_max_delay_seconds),
            forget=timedelta(hours=console.login_forget_hours),
            audit_every=timedelta(minutes=console.login_audit_minutes),
        )


@dataclass(frozen=True)
class Key:
    bucket: str
    free: int  # failures allowed before delays start


def keys_for(policy: Policy, address: str, account_hash: str) -> tuple[Key, Key]:
    """The address's key and the account's key for one try."""
    return (
        Key(f"ip:{address}"[:80], policy.ip_failures),
        Key(f"account:{account_hash}"[:80], policy.account_failures),
    )


def delay(failures: int, free: int, max_delay: timedelta) -> timedelta | None:
    """How long a key with `failures` must wait before its next try (None: no wait)."""
    if failures < free:
        return None
    return min(timedelta(seconds=2 ** min(failures - free + 1, MAX_DOUBLINGS)), max_delay)


def _insert(s: AsyncSession) -> Callable[[type[LoginThrottle]], postgresql.Insert | sqlite.Insert]:
    """The dialect's INSERT, which has ON CONFLICT (both dialects spell it the same)."""
    return postgresql.insert if s.get_bind().dialect.name == "postgresql" else sqlite.insert


async def charge(s: AsyncSession, key: Key, policy: Policy, now: datetime) -> bool:
    """Count a try against `key`, unless the key is waiting (then False, nothing counted)."""
    row = LoginThrottle
    stmt = _insert(s)(row).values(bucket=key.bucket, failures=1, last_failure_at=now)
    stmt = stmt.on_conflict_do_update(
        index_elements=[row.bucket],
        set_={
            "failures": case(
                (row.last_failure_at < now - policy.forget, 1), else_=row.failures + 1
            ),
            "last_failure_at": now,
        },
        where=or_(row.blocked_until.is_(None), row.blocked_until <= now),
    ).returning(row.failures)
    failures = (await s.execute(stmt)).scalar_one_or_none()
    if failures is None:
        return False
    wait = delay(failures, key.free, policy.max_delay)
    if wait is not None:
        await s.execute(
            update(row).where(row.bucket == key.bucket).values(blocked_until=now + wait)
        )
    return True


async def give_back(s: AsyncSession, keys: Sequence[Key]) -> None:
    """A step succeeded: take back the try `charge` counted, and the wait it started.

    The key was not waiting when it was charged (or the charge would have been refused),
    so no wait is lost that was not started by this very try.
    """
    for key in keys:
        row = LoginThrottle
        await s.execute(
            update(row)
            .where(row.bucket == key.bucket, row.failures > 0)
            .values(failures=row.failures - 1, blocked_until=None)
        )


async def clear(s: AsyncSession, key: Key) -> None:
    """The login is complete: forget the account's failures."""
    await s.execute(delete(LoginThrottle).where(LoginThrottle.bucket == key.bucket))


async def wait_left(s: AsyncSession, keys: Sequence[Key], now: datetime) -> timedelta:
    """How long until all these keys may try again."""
    until = await s.scalar(
        select(func.max(LoginThrottle.blocked_until)).where(
            LoginThrottle.bucket.in_([k.bucket for k in keys])
        )
    )
    return max(until - now, timedelta(0)) if until is not None else timedelta(0)


async def audit_due(s: AsyncSession, keys: Sequence[Key], policy: Policy, now: datetime) -> bool:
    """Whether a failure on these keys is to be audited: once per key per `audit_every`."""
    row = LoginThrottle
    marked = await s.execute(
        update(row)
        .where(
            row.bucket.in_([k.bucket for k in keys]),
            or_(row.audited_at.is_(None), row.audited_at <= now - policy.audit_every),
        )
        .values(audited_at=now)
        .returning(row.bucket)
    )
    return bool(marked.all())


async def prune(s: AsyncSession, policy: Policy, now: datetime) -> None:
    """Forget keys that have not failed for `forget` and are not waiting."""
    row = LoginThrottle
    await s.execute(
        delete(row).where(
            row.last_failure_at < now - policy.forget,
            or_(row.blocked_until.is_(None), row.blocked_until <= now),
        )
    )
