"""Console accounts (`pmi/staff.py`): roles and scopes, passwords, sessions, the audit log."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from pmi import staff
from pmi.db import utcnow
from pmi.models import Role, StaffSession, StaffUser

Sessions = async_sessionmaker[AsyncSession]
PASSWORD = "correct horse battery staple"
IDLE, ABSOLUTE = timedelta(minutes=30), timedelta(hours=12)


async def _user(s: AsyncSession, name: str = "ana", role: str = Role.OPERATOR) -> StaffUser:
    mission = "KBRI-KUALA-LUMPUR" if role == Role.MISSION else None
    return await staff.create_user(s, name, PASSWORD, role, mission)


@pytest.mark.parametrize(
    ("username", "role", "mission", "reason"),
    [
        ("ana", "superuser", None, "role must be one of"),
        ("ana", Role.MISSION, None, "mission code"),
        ("a", Role.OPERATOR, None, "user name"),
        ("ana smith", Role.OPERATOR, None, "user name"),
    ],
)
async def test_create_user_refuses_bad_accounts(
    sessions: Sessions, username: str, role: str, mission: str | None, reason: str
) -> None:
    async with sessions() as s:
        with pytest.raises(staff.StaffError, match=reason):
            await staff.create_user(s, username, PASSWORD, role, mission)


async def test_a_user_name_is_taken_once(sessions: Sessions) -> None:
    async with sessions() as s:
        await _user(s)
        with pytest.raises(staff.StaffError, match="exists"):
            await _user(s)


async def test_only_mission_staff_keep_a_mission_code(sessions: Sessions) -> None:
    async with sessions() as s:
        operator = await staff.create_user(s, "op", PASSWORD, Role.OPERATOR, "KBRI-KUALA-LUMPUR")
        mission = await _user(s, "kl", Role.MISSION)
    assert operator.mission_code is None
    assert mission.mission_code == "KBRI-KUALA-LUMPUR"


async def test_passwords_are_stored_as_argon2_hashes_only(sessions: Sessions) -> None:
    async with sessions() as s:
        user = await _user(s)
    assert PASSWORD not in user.password_hash and user.password_hash.startswith("$argon2id$")
    assert staff.verify_password(user.password_hash, PASSWORD) == (True, None)
    assert staff.verify_password(user.password_hash, PASSWORD + "!") == (False, None)


def test_verifying_without_a_user_always_fails() -> None:
    assert staff.verify_password(None, PASSWORD) == (False, None)
    assert staff.verify_password("not a hash", PASSWORD) == (False, None)


def test_long_passwords_are_refused() -> None:
    with pytest.raises(staff.StaffError, match="at most 256"):
        staff.check_password("abcdefgh" * 33, "ana")


async def test_find_user_by_name(sessions: Sessions) -> None:
    async with sessions() as s:
        made = await _user(s)
        assert await staff.find_user(s, "ana") is made
        assert await staff.find_user(s, "nobody") is None


async def test_a_session_token_is_stored_only_as_its_hash(sessions: Sessions) -> None:
    async with sessions() as s:
        token, opened = await staff.open_session(s, await _user(s))
        assert token not in (opened.token_hash, opened.csrf_token)
        found = await staff.load_session(s, token, IDLE, ABSOLUTE)
        assert found is not None and found[0] is opened and found[1].username == "ana"
        assert await staff.load_session(s, token + "x", IDLE, ABSOLUTE) is None


async def _aged(s: AsyncSession, session: StaffSession, **ages: timedelta) -> None:
    values = {column: utcnow() - age for column, age in ages.items()}
    await s.execute(update(StaffSession).where(StaffSession.id == session.id).values(**values))
    await s.refresh(session)


@pytest.mark.parametrize(
    "ages",
    [
        {"last_seen_at": timedelta(minutes=31)},
        {"created_at": timedelta(hours=13), "last_seen_at": timedelta(minutes=1)},
    ],
    ids=["idle", "too-old"],
)
async def test_an_expired_session_is_deleted(sessions: Sessions, ages: dict) -> None:
    async with sessions() as s:
        token, opened = await staff.open_session(s, await _user(s))
        await _aged(s, opened, **ages)
        assert await staff.load_session(s, token, IDLE, ABSOLUTE) is None
        await s.flush()
        assert await s.get(StaffSession, opened.id) is None


async def test_only_a_touching_load_restarts_the_idle_timeout(sessions: Sessions) -> None:
    async with sessions() as s:
        token, opened = await staff.open_session(s, await _user(s))
        await _aged(s, opened, last_seen_at=timedelta(minutes=20))
        before = opened.last_seen_at
        await staff.load_session(s, token, IDLE, ABSOLUTE, touch=False)
        assert opened.last_seen_at == before
        await staff.load_session(s, token, IDLE, ABSOLUTE)
        assert opened.last_seen_at > before


async def test_closing_a_session_forgets_the_token(sessions: Sessions) -> None:
    async with sessions() as s:
        token, _ = await staff.open_session(s, await _user(s))
        await staff.close_session(s, token)
        assert await staff.load_session(s, token, IDLE, ABSOLUTE) is None


@pytest.mark.parametrize(
    "change",
    [
        lambda s, user: staff.set_active(s, user, False),
        lambda s, user: staff.reset_password(s, user, "a brand new passphrase"),
    ],
    ids=["deactivated", "password-reset"],
)
async def test_deactivation_and_password_reset_end_every_session(
    sessions: Sessions, change: Callable
) -> None:
    async with sessions() as s:
        user = await _user(s)
        tokens = [(await staff.open_session(s, user))[0] for _ in range(2)]
        await change(s, user)
        for token in tokens:
            assert await staff.load_session(s, token, IDLE, ABSOLUTE) is None


async def test_a_reset_password_replaces_the_old_one(sessions: Sessions) -> None:
    async with sessions() as s:
        user = await _user(s)
        with pytest.raises(staff.StaffError):
            await staff.reset_password(s, user, "short")
        await staff.reset_password(s, user, "a brand new passphrase")
    assert staff.verify_password(user.password_hash, "a brand new passphrase")[0]
    assert not staff.verify_password(user.password_hash, PASSWORD)[0]


async def test_a_reactivated_user_logs_in_again(sessions: Sessions) -> None:
    async with sessions() as s:
        user = await _user(s)
        await staff.set_active(s, user, False)
        await staff.set_active(s, user, True)
        token, _ = await staff.open_session(s, user)
        assert await staff.load_session(s, token, IDLE, ABSOLUTE) is not None


async def test_users_are_listed_by_name(sessions: Sessions) -> None:
    async with sessions() as s:
        for name in ("zainal", "ana", "budi"):
            await _user(s, name)
        assert [u.username for u in await staff.users(s)] == ["ana", "budi", "zainal"]


async def _audit_log(s: AsyncSession) -> StaffUser:
    """Four entries, oldest first: two by ana, one by budi, one by the system."""
    ana, budi = await _user(s, "ana"), await _user(s, "budi", Role.ADMIN)
    await staff.audit(s, ana, "view_case", "PMI-AAAA11", {"why": "triage"})
    await staff.audit(s, ana, "denied", "PMI-BBBB22")
    await staff.audit(s, budi, "view_conversation", "c_1%")
    await staff.audit(s, None, "retention")
    await s.flush()
    return ana


async def test_the_audit_log_is_newest_first_with_user_names(sessions: Sessions) -> None:
    async with sessions() as s:
        await _audit_log(s)
        rows, total = await staff.audit_entries(s)
    assert total == 4
    assert [(e.action, name) for e, name in rows] == [
        ("retention", None),
        ("view_conversation", "budi"),
        ("denied", "ana"),
        ("view_case", "ana"),
    ]
    assert rows[-1][0].detail == {"why": "triage"} and rows[-2][0].detail == {}


async def test_the_audit_log_filters_by_user_action_and_target(sessions: Sessions) -> None:
    async with sessions() as s:
        ana = await _audit_log(s)
        by_ana = await staff.audit_entries(s, staff.AuditFilters(user_id=ana.id))
        denied = await staff.audit_entries(s, staff.AuditFilters(action="denied"))
        prefix = await staff.audit_entries(s, staff.AuditFilters(target="pmi-"))
    assert by_ana[1] == 2 and denied[1] == 1
    assert {e.target for e, _ in prefix[0]} == {"PMI-AAAA11", "PMI-BBBB22"}


async def test_wildcards_in_a_target_filter_are_taken_literally(sessions: Sessions) -> None:
    async with sessions() as s:
        await _audit_log(s)
        assert (await staff.audit_entries(s, staff.AuditFilters(target="%")))[1] == 0
        assert (await staff.audit_entries(s, staff.AuditFilters(target="c_1%")))[1] == 1
        assert (await staff.audit_entries(s, staff.AuditFilters(target="c__")))[1] == 0


async def test_the_audit_log_filters_by_time(sessions: Sessions) -> None:
    async with sessions() as s:
        await _audit_log(s)
        now = utcnow()
        later = staff.AuditFilters(since=now + timedelta(minutes=1))
        earlier = staff.AuditFilters(until=now + timedelta(minutes=1))
        assert (await staff.audit_entries(s, later))[1] == 0
        assert (await staff.audit_entries(s, earlier))[1] == 4


async def test_the_audit_log_is_paged(sessions: Sessions) -> None:
    async with sessions() as s:
        await _audit_log(s)
        first, total = await staff.audit_entries(s, page=1, per_page=3)
        second, _ = await staff.audit_entries(s, page=2, per_page=3)
        before_first, _ = await staff.audit_entries(s, page=0, per_page=3)
    assert total == 4 and len(first) == 3 and len(second) == 1
    assert [e.id for e, _ in before_first] == [e.id for e, _ in first]


async def test_the_audit_actions_are_listed_once_each(sessions: Sessions) -> None:
    async with sessions() as s:
        ana = await _audit_log(s)
        await staff.audit(s, ana, "denied", "PMI-CCCC33")
        assert await staff.audit_actions(s) == [
            "denied",
            "retention",
            "view_case",
            "view_conversation",
        ]
