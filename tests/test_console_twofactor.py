"""Two-factor console login over HTTP: TOTP codes, recovery codes, enrolment, expiry."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.console.context import KEYS
from bot.keys import SESSIONMAKER
from pmi import staff
from pmi.login_models import StaffLoginChallenge, StaffRecoveryCode
from pmi.models import AuditEntry, StaffUser
from tests.console_helpers import (
    CSRF,
    PASSWORD,
    SECRET,
    TOTP_SECRET,
    complete_enrolment,
    console_client,
    enable_totp,
    fresh_code,
    login,
    password_step,
    submit_code,
)


@pytest.fixture
async def client(app_db: str) -> AsyncIterator[TestClient]:
    async with console_client(app_db) as client:
        yield client


async def _user(client: TestClient, username: str) -> StaffUser:
    async with client.app[SESSIONMAKER]() as s:
        user = await staff.find_user(s, username)
    assert user is not None
    return user


async def _logged_in(client: TestClient) -> bool:
    return (await client.get("/console/", allow_redirects=False)).status == 200


async def test_admins_give_a_code_after_the_password(client) -> None:
    step = await password_step(client, "admin1")
    assert step.status == 302 and step.headers["Location"] == "/console/login/code"
    challenge = step.cookies["pmi_login_2fa"]
    assert challenge["httponly"] and challenge["samesite"] == "Strict"
    assert not await _logged_in(client)  # the password alone opens no session
    assert (await submit_code(client, "000000")).status == 401
    code = await fresh_code(client.app, "admin1")
    done = await submit_code(client, code)
    assert done.status == 302 and done.headers["Location"] == "/console/"
    assert await _logged_in(client)
    # The same code does not open a second session.
    await password_step(client, "admin1")
    assert (await submit_code(client, code)).status == 401
    async with client.app[SESSIONMAKER]() as s:
        logins = (await s.scalars(select(AuditEntry).where(AuditEntry.action == "login"))).all()
    assert [e.detail for e in logins] == [{"second_factor": "totp"}]


async def test_codes_one_step_either_side_are_accepted(client) -> None:
    totp = pyotp.TOTP(TOTP_SECRET)
    for offset, status in ((-1, 302), (1, 302), (3, 401)):
        await fresh_code(client.app, "admin1")
        await password_step(client, "admin1")
        code = totp.generate_otp(totp.timecode(datetime.now(UTC)) + offset)
        assert (await submit_code(client, code)).status == status, offset


async def test_a_recovery_code_works_once(client) -> None:
    codes = await enable_totp(client.app, "kl_staff")  # new codes (the old ones are void)
    assert len(codes) == 10 and len(set(codes)) == 10
    await password_step(client, "kl_staff")
    assert (await submit_code(client, codes[0].upper().replace("-", " "))).status == 302
    await password_step(client, "kl_staff")
    assert (await submit_code(client, codes[0])).status == 401  # used up
    assert (await submit_code(client, codes[1])).status == 302
    async with client.app[SESSIONMAKER]() as s:
        stored = (await s.scalars(select(StaffRecoveryCode.code_hash))).all()
    assert len(stored) == 8 + 10  # admin1's ten, and kl_staff's eight left
    assert not {c.replace("-", "") for c in codes} & set(stored)  # only hashes are kept


async def test_wrong_codes_and_time_end_the_challenge(client) -> None:
    await password_step(client, "admin1")
    for _ in range(4):
        assert (await submit_code(client, "123456")).status == 401
    last = await submit_code(client, "123456")
    assert last.status == 401 and "Masuk lagi" in await last.text()
    gone = await client.get("/console/login/code", allow_redirects=False)
    assert gone.status == 302 and gone.headers["Location"] == "/console/login"
    # A challenge lasts five minutes.
    await password_step(client, "admin1")
    async with client.app[SESSIONMAKER]() as s, s.begin():
        for challenge in (await s.scalars(select(StaffLoginChallenge))).all():
            challenge.created_at -= timedelta(minutes=6)
    assert (await client.get("/console/login/code", allow_redirects=False)).status == 302
    expired = await submit_code_anyway(client, await fresh_code(client.app, "admin1"))
    assert expired.status == 401 and not await _logged_in(client)


async def test_mission_staff_set_up_an_authenticator_at_their_first_login(client) -> None:
    async with client.app[SESSIONMAKER]() as s, s.begin():
        await staff.create_user(s, "jb_staff", PASSWORD, "mission", "KJRI-JOHOR-BAHRU")
    step = await password_step(client, "jb_staff")
    assert step.status == 302 and step.headers["Location"] == "/console/login/enrol"
    page = await (await client.get("/console/login/enrol")).text()
    assert "<svg" in page and 'id="totp-secret"' in page and "<img" not in page
    assert not await _logged_in(client)
    done, secret, codes = await complete_enrolment(client)
    assert done.status == 200 and len(codes) == 10
    assert await _logged_in(client)
    user = await _user(client, "jb_staff")
    assert user.totp_secret and secret not in user.totp_secret  # stored encrypted
    assert client.app[KEYS].decrypt(user.totp_secret) == secret
    # From now on the password leads to the code, never to a new enrolment.
    assert (await password_step(client, "jb_staff")).headers["Location"] == "/console/login/code"
    again = await client.get("/console/login/enrol", allow_redirects=False)
    assert again.status == 302 and again.headers["Location"] == "/console/login/code"
    async with client.app[SESSIONMAKER]() as s:
        enrolled = await s.scalar(select(AuditEntry).where(AuditEntry.action == "totp_enrolled"))
    assert enrolled is not None and enrolled.user_id == user.id


async def test_a_wrong_code_at_enrolment_keeps_the_same_secret(client) -> None:
    async with client.app[SESSIONMAKER]() as s, s.begin():
        await staff.create_user(s, "admin2", PASSWORD, "admin")
    await password_step(client, "admin2")
    first = SECRET.search(await (await client.get("/console/login/enrol")).text())
    assert (await submit_code(client, "000000", "enrol")).status == 401
    again = SECRET.search(await (await client.get("/console/login/enrol")).text())
    assert first and again and first.group(1) == again.group(1)
    assert (await _user(client, "admin2")).totp_secret is None


async def test_operators_may_turn_on_two_factor_login(client) -> None:
    assert (await login(client, "operator1")).headers["Location"] == "/console/"  # no code
    page = await (await client.get("/console/account")).text()
    secret = SECRET.search(page).group(1)  # type: ignore[union-attr]
    token = re.search(r'name="challenge" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    form = {"csrf": CSRF.search(page).group(1), "challenge": token, "code": "000000"}  # type: ignore[union-attr]
    assert (await client.post("/console/account/totp", data=form)).status == 400
    form["code"] = pyotp.TOTP(secret).now()
    done = await client.post("/console/account/totp", data=form)
    assert done.status == 200 and (await done.text()).count("<li><code>") == 10
    step = await password_step(client, "operator1")
    assert step.headers["Location"] == "/console/login/code"
    code = pyotp.TOTP(secret).generate_otp(pyotp.TOTP(secret).timecode(datetime.now(UTC)) + 1)
    assert (await submit_code(client, code)).status == 302
    account = await (await client.get("/console/account")).text()
    assert '<span id="codes-left">10</span>' in account


async def submit_code_anyway(client: TestClient, code: str):  # type: ignore[no-untyped-def]
    """Post a (good) code without a live challenge page to take the CSRF token from."""
    return await client.post("/console/login/code", data={"csrf": "x", "code": code})
