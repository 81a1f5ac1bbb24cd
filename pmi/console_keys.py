"""The console's secret key: encrypts TOTP secrets and keys the login throttle's hashes.

The key comes from CONSOLE_SECRET_KEY. Without it, a random key is made once and kept in
`console.secret_key_file` (owner read-only), which suits one app host; several app
processes on different hosts must share the variable. Losing the key means every user
enrols their authenticator app again (an admin resets their two-factor authentication).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from pmi.settings import ROOT, ConsoleSettings

logger = logging.getLogger(__name__)
MIN_KEY = 32


class ConsoleKeyError(RuntimeError):
    """The console key is missing, too short or unreadable; the message says what to fix."""


def _derive(secret: bytes, purpose: str) -> bytes:
    return hmac.new(secret, f"pmi-console:{purpose}".encode(), hashlib.sha256).digest()


@dataclass(frozen=True)
class ConsoleKeys:
    """Keys derived from the console secret, one per purpose."""

    _fernet: Fernet
    _throttle: bytes

    @classmethod
    def from_secret(cls, secret: str) -> ConsoleKeys:
        if len(secret) < MIN_KEY:
            raise ConsoleKeyError(f"CONSOLE_SECRET_KEY must have at least {MIN_KEY} characters")
        raw = secret.encode()
        fernet = Fernet(base64.urlsafe_b64encode(_derive(raw, "totp-secrets")))
        return cls(fernet, _derive(raw, "login-throttle"))

    def encrypt(self, text: str) -> str:
        return self._fernet.encrypt(text.encode()).decode()

    def decrypt(self, token: str) -> str | None:
        """The plain text, or None if this key did not encrypt it (or it was altered)."""
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            return None

    def account_hash(self, username: str) -> str:
        """A keyed hash of an account name, so the throttle never stores what was typed."""
        return hmac.new(self._throttle, username.casefold().encode(), hashlib.sha256).hexdigest()


def _key_file(path: Path) -> str:
    """The key kept in `path`, made (randomly, owner read-only) if there is none."""
    path = path if path.is_absolute() else ROOT / path
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written aside, then linked into place: a process starting at the same time
        # either makes the file or reads the whole key, never half of it.
        draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(secrets.token_urlsafe(48))
        try:
            os.link(draft, path)
            logger.warning("CONSOLE_SECRET_KEY is not set: made a console key in %s", path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text(encoding="ascii").strip()


def load_console_keys(settings: ConsoleSettings) -> ConsoleKeys:
    """The keys from CONSOLE_SECRET_KEY, or from the key file (made on first start)."""
    if settings.secret_key is not None:
        return ConsoleKeys.from_secret(settings.secret_key.get_secret_value())
    try:
        return ConsoleKeys.from_secret(_key_file(settings.secret_key_file))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConsoleKeyError(
            f"cannot read or make the console key file {settings.secret_key_file}: {exc}; "
            "set CONSOLE_SECRET_KEY"
        ) from exc
