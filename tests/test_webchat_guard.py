"""The web chat's guard: signed sender cookies, client addresses, limits (no network)."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import make_mocked_request

from bot.webchat_guard import (
    SenderCookies,
    SlidingWindow,
    UrgentCap,
    client_ip,
    limit_key,
    parse_networks,
)
from pmi.settings import SettingsError, load_settings


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_new_sender_is_128_random_bits() -> None:
    senders = {SenderCookies.new_sender() for _ in range(100)}
    assert len(senders) == 100
    assert all(len(s) == 32 and int(s, 16) >= 0 for s in senders)


def test_a_signed_sender_reads_back_and_a_tampered_one_does_not() -> None:
    cookies = SenderCookies(b"k" * 32, max_age=3600)
    value = cookies.sign("abc123")
    assert cookies.sender_of(value) == "abc123"
    sender, issued, signature = value.split(".")
    assert cookies.sender_of(f"other.{issued}.{signature}") is None
    assert cookies.sender_of(f"{sender}.{int(issued) + 1}.{signature}") is None
    assert cookies.sender_of(value[:-1] + ("A" if value[-1] != "A" else "B")) is None
    assert SenderCookies(b"x" * 32, max_age=3600).sender_of(value) is None  # another key
    for junk in (None, "", "abc123", "a.b.c", "\udcff.1.x", "é" * 50):
        assert cookies.sender_of(junk) is None


def test_a_sender_cookie_expires() -> None:
    clock = Clock()
    cookies = SenderCookies(b"k" * 32, max_age=3600, clock=clock)
    value = cookies.sign("abc")
    clock.now += 3599
    assert cookies.sender_of(value) == "abc"
    clock.now += 2
    assert cookies.sender_of(value) is None


def test_without_a_secret_the_key_is_random_and_a_warning_says_so(caplog) -> None:
    first = SenderCookies.from_secret(None, 3600)
    second = SenderCookies.from_secret(None, 3600)
    assert second.sender_of(first.sign("abc")) is None
    assert "do not survive a restart" in caplog.text
    caplog.clear()
    kept = SenderCookies.from_secret("s3cret", 3600)
    assert SenderCookies.from_secret("s3cret", 3600).sender_of(kept.sign("abc")) == "abc"
    assert caplog.text == ""


def _request(peer: str, forwarded: str | None = None):  # type: ignore[no-untyped-def]
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    request = make_mocked_request("POST", "/api/chat", headers=headers)
    request._transport_peername = (peer, 40000)  # type: ignore[attr-defined]
    return request


def test_the_client_address_is_the_peer_unless_a_trusted_proxy_says_otherwise() -> None:
    proxies = parse_networks(["10.0.0.0/24", "127.0.0.1"])
    # A client's own X-Forwarded-For is not believed.
    assert client_ip(_request("203.0.113.9", "1.2.3.4"), proxies) == "203.0.113.9"
    assert client_ip(_request("203.0.113.9", "1.2.3.4"), ()) == "203.0.113.9"
    # Through our proxy: the nearest hop that is not a proxy of ours.
    assert client_ip(_request("10.0.0.2", "198.51.100.7"), proxies) == "198.51.100.7"
    assert client_ip(_request("10.0.0.2", "6.6.6.6, 198.51.100.7"), proxies) == "198.51.100.7"
    assert client_ip(_request("10.0.0.2", "198.51.100.7, 10.0.0.5"), proxies) == "198.51.100.7"
    assert client_ip(_request("127.0.0.1", "198.51.100.7"), proxies) == "198.51.100.7"
    # A trusted proxy without (or with garbage in) the header: the proxy's own address.
    assert client_ip(_request("10.0.0.2"), proxies) == "10.0.0.2"
    assert client_ip(_request("10.0.0.2", "not-an-ip"), proxies) == "10.0.0.2"


def test_trusted_proxies_come_from_the_environment_and_are_checked() -> None:
    env = {"TRUSTED_PROXIES": "172.30.255.0/24, 127.0.0.1"}
    assert load_settings(env=env).app.trusted_proxies == ["172.30.255.0/24", "127.0.0.1"]
    assert load_settings(env={}).app.trusted_proxies == []
    with pytest.raises(SettingsError, match="trusted_proxies"):
        load_settings(env={"TRUSTED_PROXIES": "caddy"})


def test_limits_count_an_ipv6_client_by_its_64() -> None:
    assert limit_key("2001:db8:1:2:3:4:5:6") == limit_key("2001:db8:1:2:ffff::1")
    assert limit_key("2001:db8:1:2::1") != limit_key("2001:db8:1:3::1")
    assert limit_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert limit_key("192.0.2.1") == "192.0.2.1"


def test_a_sliding_window_refuses_past_its_limit_and_forgets_old_events() -> None:
    clock = Clock()
    window = SlidingWindow(3, 60, clock)
    assert [window.allow("a") for _ in range(4)] == [True, True, True, False]
    assert window.allow("b")  # per key
    clock.now += 61
    assert window.allow("a")
    assert set(window._events) == {"a"}  # idle keys are swept


def test_the_urgent_cap_counts_per_address_of_the_contact() -> None:
    clock = Clock()
    cap = UrgentCap(2, clock)
    cap.note(1, "192.0.2.1")
    cap.note(2, "192.0.2.1")
    cap.note(3, "198.51.100.1")
    assert not cap.reached(1)
    cap.count(1, "greet")  # only emergency and self-harm turns count
    cap.count(1, None)
    assert not cap.reached(1)
    cap.count(1, "report_emergency")
    cap.count(2, "report_self_harm")
    assert cap.reached(1) and cap.reached(2) and not cap.reached(3)
    assert not cap.reached(99)  # not a web chat contact: never capped
    cap.count(99, "report_emergency")
    clock.now += 3601
    assert not cap.reached(1)
