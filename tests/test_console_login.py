"""Console login hardening: throttling by address and account, CSRF, bounded records, and
logins that neither lock accounts nor stall the app."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient
from alembic import command
from sqlalchemy import String, Text, select, text, update

from bot.console.context import PASSWORDS
from bot.keys import SESSIONMAKER, SETTINGS
from pmi.db import Base, create_engine, utcnow
from pmi.login_models import LoginThrottle
from pmi.models import AuditEntry, StaffSession
from tests.console_helpers import CSRF, PASSWORD, console_client, login, password_step
from tests.support import alembic_config, chat_cookies, wait_until

WRONG = "wrong password!!"
A, B = "203.0.113.10", "198.51.100.20"  # two client addresses (behind the trusted proxy)


@pytest.fixture
async def client(app_db: str) -> AsyncIterator[TestClient]:
    async with console_client(app_db) as client:
        yield client


async def _time_passes(client: TestClient, seconds: float) -> None:
    """Move every throttle key `seconds` into the past, as if that time had gone by."""
    shift = timedelta(seconds=seconds)
    async with client.app[SESSIONMAKER]() as s, s.begin():
        for row in (await s.scalars(select(LoginThrottle))).all():
            row.last_failure_at -= shift
            row.blocked_until = row.blocked_until - shift if row.blocked_until else None
            row.audited_at = row.audited_at - shift if row.audited_at else None


async def _wait_asked(resp) -> int:  # type: ignore[no-untyped-def]
    assert resp.status == 429, await resp.text()
    return int(resp.headers["Retry-After"])


async def test_wrong_tries_from_one_address_do_not_lock_the_account(client) -> None:
    for _ in range(5):
        assert (await password_step(client, "admin1", WRONG, ip=A)).status == 401
    # That address now waits, even with the right password...
    assert await _wait_asked(await password_step(client, "admin1", PASSWORD, ip=A)) == 2
    # ...but the admin, elsewhere, logs in (password and TOTP code) at once.
    ok = await login(client, "admin1", ip=B)
    assert ok.status == 302 and ok.headers["Location"] == "/console/"
    assert (await client.get("/console/users")).status == 200


async def test_each_further_failure_doubles_the_wait_up_to_the_cap(client) -> None:
    for _ in range(5):
        assert (await password_step(client, "nobody", WRONG, ip=A)).status == 401
    waits = []
    for _ in range(4):
        waits.append(await _wait_asked(await password_step(client, "nobody", WRONG, ip=A)))
        await _time_passes(client, waits[-1])
        assert (await password_step(client, "nobody", WRONG, ip=A)).status == 401
    assert waits == [2, 4, 8, 16]
    async with client.app[SESSIONMAKER]() as s, s.begin():
        await s.execute(update(LoginThrottle).values(failures=40, blocked_until=None))
    assert (await password_step(client, "nobody", WRONG, ip=A)).status == 401
    assert await _wait_asked(await password_step(client, "nobody", WRONG, ip=A)) == 900
    # Never locked for good: once the wait is over the right password works from there.
    await _time_passes(client, 900)
    assert (await login(client, "operator1", ip=A)).status == 302
    assert (await login(client, "operator1", ip=A)).status == 302  # and again: no new wait


async def test_an_attacked_account_slows_down_but_is_never_locked(client) -> None:
    client.app[SETTINGS].console.login_account_failures = 3
    for i in range(3):  # from three addresses, none of them throttled itself
        assert (await password_step(client, "operator1", WRONG, ip=f"192.0.2.{i}")).status == 401
    assert await _wait_asked(await password_step(client, "operator1", PASSWORD, ip=B)) == 2
    await _time_passes(client, 2)
    assert (await login(client, "operator1", ip=B)).status == 302
    async with client.app[SESSIONMAKER]() as s:
        keys = (await s.scalars(select(LoginThrottle.bucket))).all()
    assert not [k for k in keys if k.startswith("account:")]  # the login cleared its failures


async def test_login_refuses_an_empty_or_missing_csrf_pair(client) -> None:
    for cookie, field in (("", ""), (None, None), ("", None), (None, ""), ("x", "")):
        client.session.cookie_jar.clear()
        data = {"username": "operator1", "password": PASSWORD}
        if field is not None:
            data["csrf"] = field
        headers = {"Cookie": f"pmi_login_csrf={cookie}"} if cookie is not None else {}
        resp = await client.post("/console/login", data=data, headers=headers)
        assert resp.status == 403, (cookie, field)
    assert (await login(client, "operator1")).status == 302  # the real pair still works


async def test_failed_logins_keep_one_row_per_key_and_never_what_was_typed(client) -> None:
    typed = [f"Rahasia-{i}-sandi!" for i in range(10)]  # passwords typed as the user name
    for i in range(30):
        await password_step(client, typed[i % 10], WRONG, ip=f"198.51.100.{i % 3}")
    async with client.app[SESSIONMAKER]() as s:
        rows = (await s.scalars(select(LoginThrottle))).all()
        audited = (
            await s.scalars(
                select(AuditEntry).where(AuditEntry.action.in_(["login_failed", "login_throttled"]))
            )
        ).all()
        stored = await _all_text(s)
    assert len(rows) == 13  # 3 addresses + 10 names, whatever the number of tries
    assert sum(r.failures for r in rows) <= 60 and len(audited) <= 13
    assert {a.target for a in audited} == {None}  # no such accounts: no name at all
    assert not [t for t in typed if t in stored]
    # Keys without failures for a day are forgotten.
    await _time_passes(client, 25 * 3600)
    await password_step(client, "someone", WRONG, ip=A)
    async with client.app[SESSIONMAKER]() as s:
        assert len((await s.scalars(select(LoginThrottle))).all()) == 2


async def _all_text(s) -> str:  # type: ignore[no-untyped-def]
    """Every text column of every table, joined (to look for what must not be kept)."""
    found = []
    for table in Base.metadata.sorted_tables:
        columns = [c for c in table.columns if isinstance(c.type, String | Text)]
        for column in columns + [c for c in table.columns if c.type.__class__.__name__ == "JSON"]:
            found += [str(v) for v in (await s.scalars(select(column))).all()]
    return "\n".join(found)


async def test_the_alert_poll_does_not_keep_a_session_alive(client) -> None:
    await login(client, "kl_staff")

    async def idle(minutes: float) -> None:
        async with client.app[SESSIONMAKER]() as s, s.begin():
            since = utcnow() - timedelta(minutes=minutes)
            await s.execute(update(StaffSession).values(last_seen_at=since))

    async def last_seen() -> timedelta:
        async with client.app[SESSIONMAKER]() as s:
            return utcnow() - await s.scalar(select(StaffSession.last_seen_at))

    await idle(29)
    assert (await client.get("/console/alerts.json?after=0")).status == 200
    assert await last_seen() > timedelta(minutes=28)  # the poll did not count as activity
    await idle(31)
    assert (await client.get("/console/alerts.json?after=0")).status == 401
    await login(client, "kl_staff")
    await idle(29)
    assert (await client.get("/console/")).status == 200  # a page view does
    assert await last_seen() < timedelta(minutes=1)


async def test_logins_do_not_stall_the_web_chat(client) -> None:
    """40 anonymous logins at once (each an argon2 check): the chat is answered meanwhile.

    On the old code (checks on the event loop, in SQLite's write lock) no chat reply could
    be sent while a check ran, and some took seconds. Counted, not timed: replies that
    began and ended while checks were running.
    """
    passwords = client.app[PASSWORDS]

    async def chat(i: int) -> tuple[bool, float]:
        checking = passwords.running > 0
        start = time.perf_counter()
        # A new address each time: the web chat's own per-address limit is not under test.
        headers = {"X-Forwarded-For": f"192.0.2.{i % 250}"}
        resp = await client.post(
            "/api/chat",
            json={"text": f"halo {i}"},
            cookies=chat_cookies(client, "w"),
            headers=headers,
        )
        assert resp.status == 200, await resp.text()  # Rasa is down: the holding reply
        return checking and passwords.running > 0, time.perf_counter() - start

    await chat(0)
    page = await client.get("/console/login")
    token = CSRF.search(await page.text()).group(1)  # type: ignore[union-attr]

    async def anonymous(i: int) -> int:
        form = {"username": f"nobody{i}", "password": WRONG, "csrf": token}
        headers = {"X-Forwarded-For": f"198.51.100.{i}"}  # 40 addresses: none is throttled
        return (await client.post("/console/login", data=form, headers=headers)).status

    logins = [asyncio.create_task(anonymous(i)) for i in range(40)]
    during: list[tuple[bool, float]] = []
    while not all(task.done() for task in logins):
        during.append(await chat(100 + len(during)))
        await asyncio.sleep(0.05)
    assert await asyncio.gather(*logins) == [401] * 40
    answered_while_checking = sum(1 for inside, _ in during if inside)
    assert answered_while_checking >= 5, during
    # A generous bound (the old code's slowest were 3-7 s; these take tens of ms).
    assert max(seconds for _, seconds in during) < 3.0, during


async def test_sqlite_is_not_locked_while_a_password_is_checked(client) -> None:
    """The argon2 check happens outside any transaction: a write meanwhile is not kept waiting."""
    page = await client.get("/console/login")
    token = CSRF.search(await page.text()).group(1)  # type: ignore[union-attr]
    form = {"username": "operator1", "password": WRONG, "csrf": token}
    attempt = asyncio.create_task(client.post("/console/login", data=form))
    await wait_until(lambda: _checking(client), timeout=5, interval=0.001)
    async with client.app[SESSIONMAKER]() as s, s.begin():
        await s.execute(text("UPDATE staff_users SET active = active"))
    # The write committed while the check was still running: it did not wait for it.
    assert await _checking(client)
    assert (await attempt).status == 401


async def _checking(client: TestClient) -> bool:
    return client.app[PASSWORDS].running > 0


async def test_the_migration_forgets_names_typed_at_earlier_failed_logins(tmp_path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")

    def upgrade(connection, revision: str) -> None:  # type: ignore[no-untyped-def]
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)

    async with engine.begin() as conn:
        await conn.run_sync(upgrade, "bab234b33fd9")  # before login_throttle
        await conn.execute(
            text(
                "INSERT INTO staff_users (username, password_hash, role, active, created_at)"
                " VALUES ('admin1', 'x', 'admin', 1, '2026-01-01')"
            )
        )
        for target in ("admin1", "Rahasia-sandi-2026!", None):
            await conn.execute(
                text(
                    "INSERT INTO audit_log (at, action, target, detail)"
                    " VALUES ('2026-01-01', 'login_failed', :target, '{}')"
                ),
                {"target": target},
            )
        await conn.run_sync(upgrade, "883d43ef62a1")
        kept = (await conn.execute(text("SELECT target FROM audit_log ORDER BY id"))).all()
    await engine.dispose()
    assert [row[0] for row in kept] == ["admin1", None, None]
