"""Admin pages: user management (create, deactivate, reset password) and the audit log."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from bot.console import cli
from bot.keys import SESSIONMAKER
from pmi import staff
from pmi.login_models import StaffRecoveryCode
from pmi.models import AuditEntry, StaffSession, StaffUser
from tests.console_helpers import (
    PASSWORD,
    complete_enrolment,
    console_client,
    csrf_of,
    login,
    new_case,
    password_step,
)

NEW_PASSWORD = "another quite long secret"


@pytest.fixture
async def client(app_db: str) -> AsyncIterator[TestClient]:
    async with console_client(app_db) as client:
        yield client


async def _user(client: TestClient, username: str) -> StaffUser:
    async with client.app[SESSIONMAKER]() as s:
        user = await s.scalar(select(StaffUser).where(StaffUser.username == username))
    assert user is not None
    return user


@pytest.mark.parametrize(
    ("password", "username", "reason"),
    [
        ("short pass", "ana", "at least 12"),
        ("aaaaabbbbbaaaaabbbbb", "ana", "different characters"),
        ("xx-budi.santoso-2026", "budi.santoso", "user name"),
    ],
)
def test_weak_passwords_are_refused(password: str, username: str, reason: str) -> None:
    with pytest.raises(staff.StaffError, match=reason):
        staff.check_password(password, username)


async def test_user_pages_are_for_admins_only(client) -> None:
    operator = await _user(client, "operator1")
    for username in ("operator1", "kl_staff"):
        await login(client, username)
        token = await csrf_of(client, "/console/")
        assert (await client.get("/console/users")).status == 404
        form = {"csrf": token, "username": "sneaky", "role": "admin", "password": NEW_PASSWORD}
        assert (await client.post("/console/users", data=form)).status == 404
        reset = {"csrf": token, "password": NEW_PASSWORD}
        url = f"/console/users/{operator.id}/password"
        assert (await client.post(url, data=reset)).status == 404
    async with client.app[SESSIONMAKER]() as s:
        denied = (await s.scalars(select(AuditEntry).where(AuditEntry.action == "denied"))).all()
        assert len(denied) == 6 and {d.target for d in denied} == {"users"}
        assert await s.scalar(select(StaffUser).where(StaffUser.username == "sneaky")) is None


async def test_admin_creates_a_mission_user_who_sees_only_their_mission(client) -> None:
    await login(client, "admin1")
    token = await csrf_of(client, "/console/users")
    base = {"csrf": token, "username": "jb_staff", "role": "mission", "password": NEW_PASSWORD}
    assert (await client.post("/console/users", data={**base, "csrf": "x"})).status == 403
    no_mission = await client.post("/console/users", data=base)
    assert no_mission.status == 400 and "mission" in await no_mission.text()
    weak = await client.post(
        "/console/users", data={**base, "mission": "KJRI-JOHOR-BAHRU", "password": "short"}
    )
    assert weak.status == 400 and "at least 12" in await weak.text()
    bad_name = {**base, "mission": "KJRI-JOHOR-BAHRU", "username": "a b<"}
    assert (await client.post("/console/users", data=bad_name)).status == 400
    ok = await client.post("/console/users", data={**base, "mission": "KJRI-JOHOR-BAHRU"})
    assert ok.status == 200 and "jb_staff" in await ok.text()
    again = await client.post("/console/users", data={**base, "mission": "KJRI-JOHOR-BAHRU"})
    assert again.status == 400 and "exists" in await again.text()
    created = await _user(client, "jb_staff")
    assert created.role == "mission" and created.mission_code == "KJRI-JOHOR-BAHRU"
    assert created.password_hash.startswith("$argon2id$")
    johor = await new_case(client, "MY", "Johor Bahru")
    kl = await new_case(client, "MY", "Kuala Lumpur")
    await login(client, "jb_staff", NEW_PASSWORD)
    inbox = await (await client.get("/console/")).text()
    assert johor.reference in inbox and kl.reference not in inbox
    assert (await client.get(f"/console/cases/{kl.reference}")).status == 404


async def test_deactivation_ends_sessions_and_reset_changes_the_password(client) -> None:
    operator = await _user(client, "operator1")
    # The operator is logged in in another browser.
    async with console_client_session(client) as other:
        await login(other, "operator1")
        assert (await other.get("/console/", allow_redirects=False)).status == 200
        await login(client, "admin1")
        token = await csrf_of(client, "/console/users")
        base = f"/console/users/{operator.id}"
        assert (await client.post(f"{base}/deactivate", data={"csrf": token})).status == 200
        assert (await other.get("/console/", allow_redirects=False)).status == 302
        assert (await login(other, "operator1")).status == 401
        assert (await client.post(f"{base}/activate", data={"csrf": token})).status == 200
        assert (await login(other, "operator1")).status == 302
        weak = await client.post(f"{base}/password", data={"csrf": token, "password": "x"})
        assert weak.status == 400
        reset = await client.post(
            f"{base}/password", data={"csrf": token, "password": NEW_PASSWORD}
        )
        assert reset.status == 200
        assert (await other.get("/console/", allow_redirects=False)).status == 302
        assert (await login(other, "operator1", PASSWORD)).status == 401
        assert (await login(other, "operator1", NEW_PASSWORD)).status == 302
    admin = await _user(client, "admin1")
    own = await client.post(f"/console/users/{admin.id}/deactivate", data={"csrf": token})
    assert own.status == 400
    missing = await client.post("/console/users/999999/deactivate", data={"csrf": token})
    assert missing.status == 404
    async with client.app[SESSIONMAKER]() as s:
        actions = (
            await s.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.target == "operator1", AuditEntry.user_id == admin.id)
                .order_by(AuditEntry.id)
            )
        ).all()
        sessions = (await s.scalars(select(StaffSession))).all()
    assert actions == ["user_deactivate", "user_activate", "user_password"]
    assert {x.user_id for x in sessions} == {admin.id, operator.id}


async def test_admin_resets_two_factor_and_the_user_sets_it_up_again(client) -> None:
    kl = await _user(client, "kl_staff")
    async with console_client_session(client) as other:  # kl_staff, logged in elsewhere
        assert (await login(other, "kl_staff")).status == 302
        await login(client, "admin1")
        token = await csrf_of(client, "/console/users")
        url = f"/console/users/{kl.id}/totp_reset"
        assert (await client.post(url, data={"csrf": "forged"})).status == 403
        assert (await client.post(url, data={"csrf": token})).status == 200
        assert (await other.get("/console/", allow_redirects=False)).status == 302
        step = await password_step(other, "kl_staff")
        assert step.headers["Location"] == "/console/login/enrol"
        assert (await complete_enrolment(other))[0].status == 200
    admin = await _user(client, "admin1")
    own = await client.post(f"/console/users/{admin.id}/totp_reset", data={"csrf": token})
    assert own.status == 400 and "another admin" in await own.text()
    async with client.app[SESSIONMAKER]() as s:
        entry = await s.scalar(select(AuditEntry).where(AuditEntry.action == "user_totp_reset"))
        codes = await s.scalar(select(func.count()).where(StaffRecoveryCode.user_id == kl.id))
    assert entry is not None and entry.user_id == admin.id and entry.target == "kl_staff"
    assert codes == 10  # the new enrolment's; the old ones went with the reset


async def test_an_admin_made_on_the_command_line_sets_up_two_factor_at_first_login(
    app_db: str, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("DATABASE_URL", app_db)
    await cli.create("first_admin", PASSWORD, "admin", None)
    assert "created admin 'first_admin'" in capsys.readouterr().out
    async with console_client(app_db) as client:
        step = await password_step(client, "first_admin")
        assert step.headers["Location"] == "/console/login/enrol"
        assert (await complete_enrolment(client))[0].status == 200
        assert (await client.get("/console/users")).status == 200


class console_client_session:
    """A second cookie jar on the same app (another browser)."""

    def __init__(self, client: TestClient) -> None:
        self._client = TestClient(client.server)

    async def __aenter__(self) -> TestClient:
        await self._client.start_server()
        return self._client

    async def __aexit__(self, *exc: object) -> None:
        await self._client.session.close()  # not close(): the server is the first client's


async def test_audit_log_filters_and_pages(client) -> None:
    case = await new_case(client, "MY", "Kuala Lumpur")
    await login(client, "kl_staff")
    for _ in range(3):
        assert (await client.get(f"/console/cases/{case.reference}")).status == 200
    assert (await client.get("/console/audit")).status == 404
    await login(client, "operator1")
    await client.get(f"/console/cases/{case.reference}")
    assert (await login(client, "admin1", "not the password")).status == 401
    await login(client, "admin1")
    failed = await (await client.get("/console/audit?action=login_failed")).text()
    assert failed.count("<td>login_failed</td><td>admin1</td>") == 1
    page = await (await client.get("/console/audit", params={"user": "kl_staff"})).text()
    assert page.count("<td>view_case</td>") == 3 and "<td>denied</td>" in page
    assert "<td>operator1</td>" not in page and "<td>kl_staff</td>" in page
    by_case = await client.get("/console/audit", params={"target": case.reference.lower()})
    text = await by_case.text()
    assert text.count("<td>view_case</td>") == 4 and "<td>login</td>" not in text
    by_action = await (await client.get("/console/audit", params={"action": "login"})).text()
    assert by_action.count("<td>login</td>") == 3 and "<td>view_case</td>" not in by_action
    future = await (await client.get("/console/audit", params={"from": "2999-01-01"})).text()
    assert "Tidak ada entri" in future
    # 100 more entries: three pages of 50.
    async with client.app[SESSIONMAKER]() as s, s.begin():
        for i in range(100):
            await staff.audit(s, None, "filler", f"t{i}")
    first = await (await client.get("/console/audit")).text()
    assert first.count("<tr>") == 51 and 'rel="next"' in first and 'rel="prev"' not in first
    last = await (await client.get("/console/audit", params={"page": "3"})).text()
    assert 'rel="prev"' in last and 'rel="next"' not in last
    assert (await client.get("/console/audit", params={"page": "x"})).status == 200
