"""Two-factor authentication for the console: TOTP codes (RFC 6238) and recovery codes.

Required for admins and mission staff, optional for operators. The TOTP secret is stored
encrypted with the console key (`pmi.console_keys`) and never logged. A code is accepted
one 30-second step either side of now, and never twice (the last used step is kept).
The ten recovery codes are shown once and stored as SHA-256 hashes (they are random, so
a fast hash suffices); each works once.

Between the password and the code a login is a challenge (`StaffLoginChallenge`): a
random token in an HttpOnly cookie, minutes long, a few wrong codes at most.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

import pyotp
import qrcode
from qrcode.image.svg import SvgPathFillImage
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pmi.console_keys import ConsoleKeys
from pmi.login_models import StaffLoginChallenge, StaffRecoveryCode
from pmi.models import Role, StaffUser

ISSUER = "Konsol PMI"
RECOVERY_CODES = 10
MAX_TRIES = 5  # wrong codes on one challenge; then the password is asked again
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i


def required(user: StaffUser) -> bool:
    """Admins and mission staff must use a second factor; operators may."""
    return user.role in (Role.ADMIN, Role.MISSION)


def enabled(user: StaffUser) -> bool:
    return user.totp_secret is not None


def new_secret() -> str:
    return pyotp.random_base32()  # 160 bits, as RFC 4226 recommends


def provisioning_uri(secret: str, username: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)


def qr_svg(text: str) -> str:
    """`text` as a QR code in SVG markup (inline in the page: no image from elsewhere)."""
    image = qrcode.make(text, image_factory=SvgPathFillImage, border=2)
    return image.to_string(encoding="unicode")


def matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step whose code `code` is (now, or one step either side), or None."""
    code = code.strip().replace(" ", "")
    if len(code) != 6 or not code.isascii() or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    step = totp.timecode(now)
    for candidate in (step - 1, step, step + 1):
        if hmac.compare_digest(totp.generate_otp(candidate), code):
            return candidate
    return None


def _normal(code: str) -> str:
    return "".join(c for c in code.lower() if c not in " -")


def _recovery_hash(code: str) -> str:
    return hashlib.sha256(_normal(code).encode()).hexdigest()


def new_recovery_codes() -> list[str]:
    """Ten codes like `k7pmq-x2hcz` (about 49 random bits each)."""
    codes = []
    for _ in range(RECOVERY_CODES):
        chars = "".join(secrets.choice(_ALPHABET) for _ in range(10))
        codes.append(f"{chars[:5]}-{chars[5:]}")
    return codes


async def recovery_codes_left(s: AsyncSession, user: StaffUser) -> int:
    query = select(func.count()).where(StaffRecoveryCode.user_id == user.id)
    return await s.scalar(query) or 0


async def _claim_step(s: AsyncSession, user: StaffUser, step: int) -> bool:
    """Mark `step` used, unless it (or a later one) was: two logins never share a code."""
    result = await s.execute(
        update(StaffUser)
        .where(
            StaffUser.id == user.id,
            or_(StaffUser.totp_last_step.is_(None), StaffUser.totp_last_step < step),
        )
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


async def _use_recovery_code(s: AsyncSession, user: StaffUser, code: str) -> bool:
    if len(_normal(code)) != 10:
        return False
    result = await s.execute(
        delete(StaffRecoveryCode).where(
            StaffRecoveryCode.user_id == user.id,
            StaffRecoveryCode.code_hash == _recovery_hash(code),
        )
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


async def check_code(
    s: AsyncSession, keys: ConsoleKeys, user: StaffUser, code: str, now: datetime
) -> str | None:
    """ "totp" or "recovery" if `code` is good (it is then used up), else None."""
    secret = keys.decrypt(user.totp_secret) if user.totp_secret else None
    if secret is None:
        return None
    step = matching_step(secret, code, now)
    if step is not None:
        return "totp" if await _claim_step(s, user, step) else None
    return "recovery" if await _use_recovery_code(s, user, code) else None


async def enable(
    s: AsyncSession, keys: ConsoleKeys, user: StaffUser, secret: str, step: int, now: datetime
) -> list[str]:
    """Store a confirmed secret (its code of `step` used) and new recovery codes; return them."""
    user.totp_secret = keys.encrypt(secret)
    user.totp_enabled_at = now
    user.totp_last_step = step
    await s.execute(delete(StaffRecoveryCode).where(StaffRecoveryCode.user_id == user.id))
    codes = new_recovery_codes()
    s.add_all(StaffRecoveryCode(user_id=user.id, code_hash=_recovery_hash(c)) for c in codes)
    await s.flush()
    return codes


async def reset(s: AsyncSession, user: StaffUser) -> None:
    """Forget the user's authenticator and recovery codes: they enrol again at next login."""
    user.totp_secret = None
    user.totp_enabled_at = None
    user.totp_last_step = None
    await s.execute(delete(StaffRecoveryCode).where(StaffRecoveryCode.user_id == user.id))
    await s.execute(delete(StaffLoginChallenge).where(StaffLoginChallenge.user_id == user.id))


# --- challenges: the step between the password and the code ----------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def open_challenge(
    s: AsyncSession, keys: ConsoleKeys, user: StaffUser, now: datetime, forget: timedelta
) -> tuple[str, StaffLoginChallenge]:
    """A new challenge (with a new secret to enrol if the user has none); expired ones go."""
    await s.execute(
        delete(StaffLoginChallenge).where(StaffLoginChallenge.created_at < now - forget)
    )
    token = secrets.token_urlsafe(32)
    challenge = StaffLoginChallenge(
        token_hash=_token_hash(token),
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(32),
        enrol_secret=None if enabled(user) else keys.encrypt(new_secret()),
        created_at=now,
    )
    s.add(challenge)
    await s.flush()
    return token, challenge


async def load_challenge(
    s: AsyncSession, token: str, now: datetime, code_ttl: timedelta, enrol_ttl: timedelta
) -> tuple[StaffLoginChallenge, StaffUser] | None:
    """The live challenge of a token and its (active) user; an expired one is deleted."""
    row = (
        await s.execute(
            select(StaffLoginChallenge, StaffUser)
            .join(StaffUser, StaffUser.id == StaffLoginChallenge.user_id)
            .where(StaffLoginChallenge.token_hash == _token_hash(token))
        )
    ).first()
    if row is None:
        return None
    challenge, user = row
    ttl = code_ttl if enabled(user) else enrol_ttl
    if not user.active or now - challenge.created_at > ttl:
        await s.delete(challenge)
        return None
    return challenge, user


def enrol_secret(keys: ConsoleKeys, challenge: StaffLoginChallenge) -> str | None:
    return keys.decrypt(challenge.enrol_secret) if challenge.enrol_secret else None


async def confirm_enrolment(
    s: AsyncSession,
    keys: ConsoleKeys,
    challenge: StaffLoginChallenge,
    user: StaffUser,
    code: str,
    now: datetime,
) -> list[str] | None:
    """Enable the challenge's secret if `code` is from it; return the recovery codes."""
    secret = enrol_secret(keys, challenge)
    if enabled(user) or secret is None:
        return None  # an enrolled authenticator is never replaced with only a password
    step = matching_step(secret, code, now)
    if step is None:
        return None
    return await enable(s, keys, user, secret, step, now)


async def wrong_code(s: AsyncSession, challenge: StaffLoginChallenge) -> bool:
    """Count a wrong code; True when the challenge is used up (and deleted)."""
    challenge.tries += 1
    if challenge.tries >= MAX_TRIES:
        await s.delete(challenge)
        return True
    return False


async def close_challenge(s: AsyncSession, challenge: StaffLoginChallenge) -> None:
    await s.delete(challenge)
