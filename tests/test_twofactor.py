"""TOTP codes, recovery codes and the console key that encrypts the secrets."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime

import pyotp
import pytest
from pydantic import SecretStr

from pmi import twofactor
from pmi.console_keys import ConsoleKeyError, ConsoleKeys, load_console_keys
from pmi.models import StaffUser
from pmi.settings import ConsoleSettings

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
NOW = datetime(2026, 12, 1, 8, 0, 10, tzinfo=UTC)  # 10 s into a 30-second step


def test_codes_of_the_step_before_now_and_after_are_accepted_no_others() -> None:
    totp, step = pyotp.TOTP(SECRET), pyotp.TOTP(SECRET).timecode(NOW)
    for offset in (-1, 0, 1):
        assert (
            twofactor.matching_step(SECRET, totp.generate_otp(step + offset), NOW) == step + offset
        )
    for offset in (-3, -2, 2, 3):
        assert twofactor.matching_step(SECRET, totp.generate_otp(step + offset), NOW) is None
    code = totp.at(NOW)
    assert twofactor.matching_step(SECRET, f" {code[:3]} {code[3:]} ", NOW) == step
    for junk in ("", "12345", "1234567", "abcdef", "١٢٣٤٥٦"):  # (Arabic-Indic digits too)
        assert twofactor.matching_step(SECRET, junk, NOW) is None


def test_recovery_codes_are_random_and_easy_to_type() -> None:
    codes = twofactor.new_recovery_codes()
    assert len(codes) == len(set(codes)) == 10
    assert all(len(c) == 11 and c[5] == "-" and not set(c) & set("01ilo") for c in codes)


def test_secrets_are_encrypted_and_only_this_key_reads_them() -> None:
    keys = ConsoleKeys.from_secret("k" * 40)
    token = keys.encrypt(SECRET)
    assert SECRET not in token and keys.decrypt(token) == SECRET
    assert ConsoleKeys.from_secret("o" * 40).decrypt(token) is None
    assert keys.decrypt(token[:-4] + "AAAA") is None


def test_account_hashes_are_keyed_and_ignore_case() -> None:
    keys, other = ConsoleKeys.from_secret("k" * 40), ConsoleKeys.from_secret("o" * 40)
    assert keys.account_hash("Admin1") == keys.account_hash("admin1")
    assert keys.account_hash("admin1") != other.account_hash("admin1")
    assert "admin1" not in keys.account_hash("admin1")


def test_the_key_comes_from_the_environment_or_a_private_file(tmp_path) -> None:
    path = tmp_path / "var" / "console.key"
    first = load_console_keys(ConsoleSettings(secret_key_file=path))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o400
    again = load_console_keys(ConsoleSettings(secret_key_file=path))  # kept: same key
    assert again.decrypt(first.encrypt("x")) == "x"
    from_env = load_console_keys(ConsoleSettings(secret_key=SecretStr("e" * 32)))
    assert from_env.decrypt(first.encrypt("x")) is None
    with pytest.raises(ConsoleKeyError, match="at least 32"):
        load_console_keys(ConsoleSettings(secret_key=SecretStr("short")))


def test_admins_and_mission_staff_must_use_it_operators_may() -> None:
    for role, required in (("admin", True), ("mission", True), ("operator", False)):
        assert twofactor.required(StaffUser(username="u", role=role)) is required


def test_the_qr_code_is_plain_inline_svg() -> None:
    uri = twofactor.provisioning_uri(SECRET, "kl_staff")
    assert uri.startswith("otpauth://totp/Konsol%20PMI:kl_staff?") and f"secret={SECRET}" in uri
    svg = twofactor.qr_svg(uri)
    assert svg.startswith("<svg") and "<script" not in svg and "href" not in svg
