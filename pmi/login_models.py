"""ORM models of the console login: second-factor challenges, recovery codes, throttle keys.

Apart from `pmi.models` (which imports them, so they are on the same metadata) to keep
that file readable.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from pmi.db import Base, UTCDateTime, utcnow

Timestamp = UTCDateTime()


class StaffLoginChallenge(Base):
    """A login between the password and the second factor: not a session, minutes long.

    Only a hash of the cookie's token is stored; `enrol_secret` (encrypted) is the TOTP
    secret offered to a user setting up an authenticator app.
    """

    __tablename__ = "staff_login_challenges"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("staff_users.id", ondelete="CASCADE"), index=True
    )
    csrf_token: Mapped[str] = mapped_column(String(64))
    enrol_secret: Mapped[str | None] = mapped_column(String(255))
    tries: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, index=True)


class StaffRecoveryCode(Base):
    """A single-use recovery code (for a lost phone); only its hash is stored."""

    __tablename__ = "staff_recovery_codes"
    __table_args__ = (UniqueConstraint("user_id", "code_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id", ondelete="CASCADE"))
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class LoginThrottle(Base):
    """Failed logins per key (a client address or a keyed hash of an account name).

    One row per key, counted atomically, shared by every app process; `blocked_until` is
    when the key may try again. Keys without failures for a day are pruned.
    """

    __tablename__ = "login_throttle"

    bucket: Mapped[str] = mapped_column(String(80), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, index=True)
    blocked_until: Mapped[datetime | None] = mapped_column(Timestamp)
    audited_at: Mapped[datetime | None] = mapped_column(Timestamp)
