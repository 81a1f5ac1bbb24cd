"""Console accounts, sessions, login throttling and the audit log."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import timedelta
from functools import cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pmi.db import utcnow
from pmi.models import AuditEntry, LoginAttempt, Role, StaffSession, StaffUser

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
MIN_PASSWORD = 12


@cache
def _dummy_hash() -> str:
    """A hash to verify against when the user does not exist, so timing does not reveal it."""
    return _hasher.hash(secrets.token_hex(16))


class StaffError(ValueError):
    """A console account operation was refused; the message says why."""


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_user(
    s: AsyncSession, username: str, password: str, role: str, mission_code: str | None = None
) -> StaffUser:
    if role not in Role.ALL:
        raise StaffError(f"role must be one of {', '.join(Role.ALL)}")
    if role == Role.MISSION and not mission_code:
        raise StaffError("mission staff need a mission code")
    if len(password) < MIN_PASSWORD:
        raise StaffError(f"password must have at least {MIN_PASSWORD} characters")
    if await s.scalar(select(StaffUser.id).where(StaffUser.username == username)):
        raise StaffError(f"user {username!r} exists")
    user = StaffUser(
        username=username,
        password_hash=_hasher.hash(password),
        role=role,
        mission_code=mission_code if role == Role.MISSION else None,
    )
    s.add(user)
    await s.flush()
    return user


async def recent_failures(s: AsyncSession, username: str, window: timedelta) -> int:
    return (
        await s.scalar(
            select(func.count())
            .select_from(LoginAttempt)
            .where(LoginAttempt.username == username, LoginAttempt.at > utcnow() - window)
        )
        or 0
    )


async def authenticate(s: AsyncSession, username: str, password: str, ip: str) -> StaffUser | None:
    """Check a password (constant work whether or not the user exists); record failures."""
    user = await s.scalar(select(StaffUser).where(StaffUser.username == username))
    try:
        _hasher.verify(user.password_hash if user else _dummy_hash(), password)
        ok = user is not None and user.active
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok:
        s.add(LoginAttempt(username=username[:64], ip=ip[:64]))
        return None
    assert user is not None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    await s.execute(delete(LoginAttempt).where(LoginAttempt.username == username))
    return user


async def open_session(s: AsyncSession, user: StaffUser) -> tuple[str, StaffSession]:
    """A new session; the raw token goes into the cookie, only its hash is stored."""
    token = secrets.token_urlsafe(32)
    session = StaffSession(
        token_hash=_token_hash(token), user_id=user.id, csrf_token=secrets.token_urlsafe(32)
    )
    s.add(session)
    await s.flush()
    return token, session


async def load_session(
    s: AsyncSession, token: str, idle: timedelta, absolute: timedelta
) -> tuple[StaffSession, StaffUser] | None:
    """The live session for a cookie token; expired sessions are deleted."""
    row = (
        await s.execute(
            select(StaffSession, StaffUser)
            .join(StaffUser, StaffUser.id == StaffSession.user_id)
            .where(StaffSession.token_hash == _token_hash(token))
        )
    ).first()
    if row is None:
        return None
    session, user = row
    now = utcnow()
    if not user.active or now - session.last_seen_at > idle or now - session.created_at > absolute:
        await s.delete(session)
        return None
    session.last_seen_at = now
    return session, user


async def close_session(s: AsyncSession, token: str) -> None:
    await s.execute(delete(StaffSession).where(StaffSession.token_hash == _token_hash(token)))


async def audit(
    s: AsyncSession,
    user: StaffUser | None,
    action: str,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    s.add(
        AuditEntry(
            user_id=user.id if user else None, action=action, target=target, detail=detail or {}
        )
    )


async def audit_entries(s: AsyncSession, limit: int = 200) -> Sequence[AuditEntry]:
    rows = await s.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit))
    return rows.all()
