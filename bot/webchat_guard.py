"""What keeps the login-free web chat from being abused: server-issued senders and limits.

- A conversation's sender is made by the server (128 random bits) and kept in a cookie
  signed with HMAC-SHA256 (key `WEBCHAT_SECRET`), so a client can neither choose a sender
  nor take another conversation's.
- The client's address is the TCP peer, or, when the peer is one of `app.trusted_proxies`,
  the nearest `X-Forwarded-For` hop that is not a trusted proxy. Limits count per address
  (IPv6: per /64, what one subscriber usually gets).
- Limits: new conversations per address per hour, messages per address per minute and for
  everyone per minute (429 beyond them), and urgent cases per address per hour (beyond it
  the relay tells the actions `case_limit_reached`: contacts, but no case and no alert).

Everything is counted in memory in one app process: with several processes each counts on
its own, and a restart forgets the counts. Enough for a chat that is off unless enabled and
meant for local use; a public web chat would need the counts in a shared store.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import logging
import re
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterable

from aiohttp import web

from pmi.settings import Settings

logger = logging.getLogger(__name__)

Clock = Callable[[], float]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
HOUR, MINUTE = 3600.0, 60.0
EVERYONE = "*"  # the key of the global message count
URGENT_INTENTS = frozenset({"report_emergency", "report_self_harm"})
# <sender>.<issued, unix seconds>.<signature> (neither of the last two has a ".").
_COOKIE = re.compile(r"^([A-Za-z0-9_.:-]{1,64})\.([0-9]{1,12})\.([A-Za-z0-9_-]{43})$")


class SenderCookies:
    """Issues a new sender and signs it into a cookie value; reads the sender back."""

    def __init__(self, key: bytes, max_age: float, clock: Clock = time.time) -> None:
        self._key = key
        self._max_age = max_age
        self._clock = clock

    @classmethod
    def from_secret(cls, secret: str | None, max_age: float) -> SenderCookies:
        """A random key when no secret is configured (conversations die with the process)."""
        if not secret:
            logger.warning(
                "WEBCHAT_SECRET is not set: web chat sessions are signed with a random key "
                "and do not survive a restart of the app"
            )
            return cls(secrets.token_bytes(32), max_age)
        return cls(secret.encode(), max_age)

    @staticmethod
    def new_sender() -> str:
        return secrets.token_hex(16)

    def _signature(self, sender: str, issued: int) -> str:
        mac = hmac.new(self._key, f"webchat-sender\n{sender}\n{issued}".encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()

    def sign(self, sender: str) -> str:
        """The cookie value carrying `sender`, issued now."""
        issued = int(self._clock())
        value = f"{sender}.{issued}.{self._signature(sender, issued)}"
        if not _COOKIE.match(value):
            raise ValueError("a sender is 1-64 characters: letters, digits, '_', '.', ':', '-'")
        return value

    def sender_of(self, value: str | None) -> str | None:
        """The sender in a cookie value, if this key signed it and it has not expired."""
        match = _COOKIE.match(value or "")
        if match is None:
            return None
        sender, issued, signature = match.group(1), int(match.group(2)), match.group(3)
        if not hmac.compare_digest(signature, self._signature(sender, issued)):
            return None
        age = self._clock() - issued
        return sender if -MINUTE <= age <= self._max_age else None


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(v, strict=False) for v in values)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def client_ip(request: web.Request, trusted: tuple[Network, ...]) -> str:
    """The client's address: the peer, or behind a trusted proxy what the proxies saw."""
    peer = request.remote or ""

    def is_trusted(text: str) -> bool:
        address = _address(text)
        return address is not None and any(address in network for network in trusted)

    if not is_trusted(peer):
        return peer
    hops = [h.strip() for v in request.headers.getall("X-Forwarded-For", ()) for h in v.split(",")]
    # From the nearest hop back: the first one that is not a proxy of ours is the client
    # (anything to its left was written by the client and is not believed).
    for hop in reversed([h for h in hops if h]):
        if _address(hop) is None:
            return peer
        if not is_trusted(hop):
            return hop
    return peer


def limit_key(ip: str) -> str:
    """What the limits count by: the IPv4 address, or the IPv6 /64 network."""
    address = _address(ip)
    if address is None:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


class SlidingWindow:
    """At most `limit` events per key within the last `seconds`."""

    def __init__(self, limit: int, seconds: float, clock: Clock = time.monotonic) -> None:
        self.limit = limit
        self._seconds = seconds
        self._clock = clock
        self._events: dict[str, deque[float]] = {}
        self._swept = clock()

    def _recent(self, key: str, now: float) -> deque[float]:
        if now - self._swept >= self._seconds:  # forget keys with nothing in the window
            self._swept = now
            stale = [k for k, e in self._events.items() if not e or e[-1] <= now - self._seconds]
            for k in stale:
                del self._events[k]
        events = self._events.setdefault(key, deque(maxlen=self.limit))
        while events and events[0] <= now - self._seconds:
            events.popleft()
        return events

    def full(self, key: str) -> bool:
        return len(self._recent(key, self._clock())) >= self.limit

    def add(self, key: str) -> None:
        now = self._clock()
        self._recent(key, now).append(now)

    def allow(self, key: str) -> bool:
        """Count one event for `key`, unless the limit is reached (then False)."""
        now = self._clock()
        events = self._recent(key, now)
        if len(events) >= self.limit:
            return False
        events.append(now)
        return True


class UrgentCap:
    """Urgent cases per client address per hour, for the relay (`pmi.ratelimit.CaseLimits`)."""

    def __init__(self, limit: int, clock: Clock = time.monotonic) -> None:
        self._cases = SlidingWindow(limit, HOUR, clock)
        self._clock = clock
        self._seen: dict[int, tuple[str, float]] = {}  # contact id -> (address key, when)

    def note(self, contact_id: int, ip: str) -> None:
        """The contact's latest message came from `ip`."""
        now = self._clock()
        if len(self._seen) > 10_000:
            self._seen = {c: seen for c, seen in self._seen.items() if seen[1] > now - HOUR}
        self._seen[contact_id] = (limit_key(ip), now)

    def reached(self, contact_id: int) -> bool:
        seen = self._seen.get(contact_id)
        return seen is not None and self._cases.full(seen[0])

    def count(self, contact_id: int, intent: str | None) -> None:
        """A turn of the contact was answered: an emergency or self-harm one counts."""
        seen = self._seen.get(contact_id)
        if seen is not None and intent in URGENT_INTENTS:
            self._cases.add(seen[0])


class WebchatGuard:
    """The web chat's sender cookies, client addresses and limits, for one app."""

    def __init__(self, settings: Settings, clock: Clock = time.monotonic) -> None:
        webchat = settings.channels.webchat
        self.cookies = SenderCookies.from_secret(webchat.secret, webchat.session_hours * HOUR)
        self.trusted = parse_networks(settings.app.trusted_proxies)
        self._sessions = SlidingWindow(webchat.sessions_per_ip_hour, HOUR, clock)
        self._messages = SlidingWindow(webchat.messages_per_ip_minute, MINUTE, clock)
        self._everyone = SlidingWindow(webchat.messages_per_minute, MINUTE, clock)
        self.urgent = UrgentCap(webchat.urgent_cases_per_ip_hour, clock)

    def client_ip(self, request: web.Request) -> str:
        return client_ip(request, self.trusted)

    def refuse_message(self, ip: str) -> str | None:
        """Why a message from `ip` may not go on now, or None (it is counted)."""
        if not self._messages.allow(limit_key(ip)):
            return "too many messages from your network: wait a minute"
        if not self._everyone.allow(EVERYONE):
            return "the web chat is busy: try again in a minute"
        return None

    def admit_session(self, ip: str) -> bool:
        """Count a new conversation from `ip`; False beyond the hourly limit."""
        return self._sessions.allow(limit_key(ip))
