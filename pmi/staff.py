"""Console accounts, passwords, sessions and the audit log."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pmi.db import utcnow
from pmi.models import AuditEntry, Role, StaffSession, StaffUser

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
MIN_PASSWORD = 12
MAX_PASSWORD = 256
MIN_DISTINCT = 6
USERNAME = re.compile(r"[A-Za-z0-9_.-]{2,64}")
AUDIT_PAGE = 50


@cache
def _dummy_hash() -> str:
    """A hash to verify against when the user does not exist, so timing does not reveal it."""
    return _hasher.hash(secrets.token_hex(16))


class StaffError(ValueError):
    """A console account operation was refused; the message says why."""


def check_password(password: str, username: str) -> None:
    """Refuse weak passwords: short, one repeated pattern, or containing the user name.

    Length is what matters most (NIST SP 800-63B); no composition rules beyond that.
    """
    if len(password) < MIN_PASSWORD:
        raise StaffError(f"password must have at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise StaffError(f"password must have at most {MAX_PASSWORD} characters")
    if len(set(password)) < MIN_DISTINCT:
        raise StaffError(f"password must use at least {MIN_DISTINCT} different characters")
    if username and username.lower() in password.lower():
        raise StaffError("password must not contain the user name")


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_user(
    s: AsyncSession, username: str, password: str, role: str, mission_code: str | None = None
) -> StaffUser:
    if role not in Role.ALL:
        raise StaffError(f"role must be one of {', '.join(Role.ALL)}")
    if role == Role.MISSION and not mission_code:
        raise StaffError("mission staff need a mission code")
    if not USERNAME.fullmatch(username):
        raise StaffError("user name: 2-64 letters, digits, '.', '_' or '-'")
    check_password(password, username)
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


async def find_user(s: AsyncSession, username: str) -> StaffUser | None:
    return await s.scalar(select(StaffUser).where(StaffUser.username == username))


def verify_password(password_hash: str | None, password: str) -> tuple[bool, str | None]:
    """Check a password against a hash, or a dummy one (same work when there is no user).

    Blocking (argon2 takes a good fraction of a second): run it in a thread. Returns
    whether it matched and, if the hash's parameters are outdated, a new hash to store.
    """
    try:
        _hasher.verify(password_hash or _dummy_hash(), password[: MAX_PASSWORD + 1])
    except (VerificationError, InvalidHashError):
        return False, None
    if password_hash is None:
        return False, None
    return True, _hasher.hash(password) if _hasher.check_needs_rehash(password_hash) else None


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
    s: AsyncSession, token: str, idle: timedelta, absolute: timedelta, touch: bool = True
) -> tuple[StaffSession, StaffUser] | None:
    """The live session for a cookie token; expired sessions are deleted.

    `touch` restarts the idle timeout: real page views and actions do, background polls not.
    """
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
    if touch:
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


@dataclass(frozen=True)
class AuditFilters:
    user_id: int | None = None
    action: str | None = None
    target: str | None = None  # a case reference, conversation id or user name (prefix)
    since: datetime | None = None
    until: datetime | None = None


async def audit_entries(
    s: AsyncSession, filters: AuditFilters | None = None, page: int = 1, per_page: int = AUDIT_PAGE
) -> tuple[Sequence[tuple[AuditEntry, str | None]], int]:
    """One page of the audit log, newest first, with each entry's user name; and the total."""
    f = filters or AuditFilters()
    conditions = []
    if f.user_id is not None:
        conditions.append(AuditEntry.user_id == f.user_id)
    if f.action:
        conditions.append(AuditEntry.action == f.action)
    if f.target:
        escaped = f.target.replace("!", "!!").replace("%", "!%").replace("_", "!_")
        conditions.append(AuditEntry.target.ilike(f"{escaped}%", escape="!"))
    if f.since is not None:
        conditions.append(AuditEntry.at >= f.since)
    if f.until is not None:
        conditions.append(AuditEntry.at < f.until)
    total = await s.scalar(select(func.count()).select_from(AuditEntry).where(*conditions)) or 0
    rows = await s.execute(
        select(AuditEntry, StaffUser.username)
        .outerjoin(StaffUser, StaffUser.id == AuditEntry.user_id)
        .where(*conditions)
        .order_by(AuditEntry.id.desc())
        .offset((max(page, 1) - 1) * per_page)
        .limit(per_page)
    )
    return [(entry, name) for entry, name in rows.all()], total


async def audit_actions(s: AsyncSession) -> Sequence[str]:
    """The actions that occur in the log (for the filter's choices)."""
    return (await s.scalars(select(AuditEntry.action).distinct().order_by(AuditEntry.action))).all()


async def users(s: AsyncSession) -> Sequence[StaffUser]:
    return (await s.scalars(select(StaffUser).order_by(StaffUser.username))).all()


async def end_sessions(s: AsyncSession, user: StaffUser) -> None:
    await s.execute(delete(StaffSession).where(StaffSession.user_id == user.id))


async def set_active(s: AsyncSession, user: StaffUser, active: bool) -> None:
    """Deactivate (ending every session of the user at once) or reactivate an account."""
    user.active = active
    if not active:
        await end_sessions(s, user)


async def reset_password(s: AsyncSession, user: StaffUser, password: str) -> None:
    """Set a new password; the user's open sessions end, so an old login cannot go on."""
    check_password(password, user.username)
    user.password_hash = _hasher.hash(password)
    await end_sessions(s, user)
