"""The staff console: login, sessions, CSRF, roles, mission isolation and case actions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select, update

from bot.app import create_app
from bot.keys import SESSIONMAKER
from pmi import failed_turns, messages, staff
from pmi.db import utcnow
from pmi.models import AuditEntry, Case, Contact, OutboundMessage, Priority, StaffSession
from tests.console_helpers import CSRF, PASSWORD, console_client, csrf_of, login, new_case
from tests.support import make_settings


@pytest.fixture
async def client(app_db: str) -> AsyncIterator[TestClient]:
    async with console_client(app_db) as client:
        yield client


async def test_console_requires_login(client) -> None:
    resp = await client.get("/console/", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == "/console/login"
    assert (await client.get("/console/alerts.json")).status == 401


async def test_login_sets_a_hardened_cookie_and_rotates_the_session(client) -> None:
    resp = await login(client, "operator1")
    assert resp.status == 302
    cookie = resp.headers.getall("Set-Cookie")
    session_cookie = next(c for c in cookie if c.startswith("pmi_session="))
    assert "HttpOnly" in session_cookie and "SameSite=Strict" in session_cookie
    first = client.session.cookie_jar.filter_cookies(client.make_url("/"))["pmi_session"].value
    await login(client, "operator1")
    second = client.session.cookie_jar.filter_cookies(client.make_url("/"))["pmi_session"].value
    assert first != second
    async with client.app[SESSIONMAKER]() as s:
        assert len((await s.scalars(select(StaffSession))).all()) == 1  # the old one is gone


async def test_cookie_is_host_prefixed_and_secure_behind_https(app_db) -> None:
    settings = make_settings(app_db)
    settings.app.public_url = "https://helpdesk.example.org"
    app = create_app(settings)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        async with client.app[SESSIONMAKER]() as s, s.begin():
            await staff.create_user(s, "op", PASSWORD, "operator")
        page = await client.get("/console/login")
        login_cookie = page.headers["Set-Cookie"]
        assert login_cookie.startswith("__Host-pmi_login_csrf=") and "Secure" in login_cookie
        token = CSRF.search(await page.text()).group(1)  # type: ignore[union-attr]
        # The Secure cookie is not sent back over plain HTTP: the test sends it itself.
        resp = await client.post(
            "/console/login",
            data={"username": "op", "password": PASSWORD, "csrf": token},
            headers={"Cookie": f"__Host-pmi_login_csrf={token}"},
            allow_redirects=False,
        )
        assert resp.status == 302
        session_cookie = resp.headers["Set-Cookie"]
        assert session_cookie.startswith("__Host-pmi_session=")
        assert "Secure" in session_cookie and "Path=/" in session_cookie


async def test_wrong_password_and_throttling(client) -> None:
    assert (await login(client, "operator1", "wrong password!!")).status == 401
    assert (await login(client, "nobody", "wrong password!!")).status == 401
    for _ in range(4):
        await login(client, "operator1", "wrong password!!")
    throttled = await login(client, "operator1")  # right password, same address: wait
    assert throttled.status == 429


async def test_state_changes_need_the_csrf_token(client) -> None:
    case = await new_case(client, "TW")
    await login(client, "operator1")
    resp = await client.post(f"/console/cases/{case.reference}/acknowledge", data={})
    assert resp.status == 403
    resp = await client.post(
        f"/console/cases/{case.reference}/acknowledge", data={"csrf": "forged"}
    )
    assert resp.status == 403


async def test_mission_staff_see_only_their_missions_cases(client) -> None:
    kl = await new_case(client, "MY", "Shah Alam")
    johor = await new_case(client, "MY", "Johor Bahru")
    taiwan = await new_case(client, "TW")
    await login(client, "kl_staff")
    inbox = await (await client.get("/console/")).text()
    assert kl.reference in inbox
    assert johor.reference not in inbox and taiwan.reference not in inbox
    assert (await client.get(f"/console/cases/{kl.reference}")).status == 200
    other = await client.get(f"/console/cases/{taiwan.reference}")
    assert other.status == 404
    token = await csrf_of(client, f"/console/cases/{kl.reference}")
    forbidden = await client.post(
        f"/console/cases/{johor.reference}/status", data={"csrf": token, "status": "closed"}
    )
    assert forbidden.status == 404
    async with client.app[SESSIONMAKER]() as s:
        denied = (await s.scalars(select(AuditEntry).where(AuditEntry.action == "denied"))).all()
        untouched = await s.get(Case, johor.id)
    assert {d.target for d in denied} == {taiwan.reference, johor.reference}
    assert untouched is not None and untouched.status == "new"


async def test_case_page_escapes_what_the_worker_wrote(client) -> None:
    case = await new_case(client, "HK", description="gaji belum dibayar <script>alert(1)</script>")
    await login(client, "operator1")
    page = await (await client.get(f"/console/cases/{case.reference}")).text()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


async def test_acknowledge_note_message_takeover_and_release(client) -> None:
    case = await new_case(client, "TW")
    await login(client, "operator1")
    path = f"/console/cases/{case.reference}"
    token = await csrf_of(client, path)
    for action, data in [
        ("acknowledge", {}),
        ("note", {"text": "called the employer"}),
        ("message", {"text": "We are contacting your employer."}),
        ("takeover", {}),
    ]:
        resp = await client.post(f"{path}/{action}", data={"csrf": token, **data})
        assert resp.status == 200, (action, await resp.text())  # redirected to the case page
    async with client.app[SESSIONMAKER]() as s:
        stored = await s.get(Case, case.id)
        contact = await s.get(Contact, case.contact_id)
        outbox = (
            await s.scalars(
                select(OutboundMessage.text).where(OutboundMessage.contact_id == case.contact_id)
            )
        ).all()
    assert stored is not None and stored.status == "acknowledged" and stored.acknowledged_at
    assert contact is not None and contact.handoff
    assert outbox == [
        f"Update on report {case.reference}: it is now seen by an officer. "
        f'Type "status {case.reference}" to see your reports.',
        "We are contacting your employer.",
    ]
    resp = await client.post(f"{path}/release", data={"csrf": token})
    assert resp.status == 200
    async with client.app[SESSIONMAKER]() as s:
        contact = await s.get(Contact, case.contact_id)
    assert contact is not None and not contact.handoff
    page = await (await client.get(path)).text()
    assert "called the employer" in page and "staff:operator1" in page


async def test_bad_input_on_actions_is_refused(client) -> None:
    case = await new_case(client, "TW")
    await login(client, "operator1")
    path = f"/console/cases/{case.reference}"
    token = await csrf_of(client, path)
    assert (await client.post(f"{path}/status", data={"csrf": token, "status": "x"})).status == 400
    assert (await client.post(f"{path}/note", data={"csrf": token, "text": " "})).status == 400
    long_text = {"csrf": token, "text": "x" * 5000}
    assert (await client.post(f"{path}/message", data=long_text)).status == 400
    assert (await client.get("/console/cases/PMI-ZZZZZZ")).status == 404
    assert (await client.get("/console/?from=not-a-date&status=bogus")).status == 200


async def test_logout_and_idle_timeout_end_the_session(client) -> None:
    await login(client, "operator1")
    token = await csrf_of(client, "/console/")
    resp = await client.post("/console/logout", data={"csrf": token}, allow_redirects=False)
    assert resp.status == 302
    assert (await client.get("/console/", allow_redirects=False)).status == 302
    await login(client, "operator1")
    async with client.app[SESSIONMAKER]() as s, s.begin():
        await s.execute(update(StaffSession).values(last_seen_at=utcnow() - timedelta(minutes=31)))
    assert (await client.get("/console/", allow_redirects=False)).status == 302


async def test_live_alerts_list_new_urgent_cases_of_the_users_mission(client) -> None:
    await login(client, "kl_staff")
    before = await (await client.get("/console/alerts.json?after=0")).json()
    assert before == {"cases": []}
    await new_case(client, "TW", priority=Priority.URGENT)
    mine = await new_case(client, "MY", "Kuala Lumpur", priority=Priority.URGENT)
    after = await (await client.get("/console/alerts.json?after=0")).json()
    assert [c["reference"] for c in after["cases"]] == [mine.reference]
    assert (await client.get("/console/alerts.json?after=x")).status == 400


async def test_audit_log_is_for_admins_only(client) -> None:
    await login(client, "operator1")
    assert (await client.get("/console/audit")).status == 404
    await login(client, "admin1")
    page = await client.get("/console/audit")
    assert page.status == 200 and "login" in await page.text()


async def test_mission_staff_cannot_open_whole_conversations(client) -> None:
    case = await new_case(client, "MY", "Kuala Lumpur")
    async with client.app[SESSIONMAKER]() as s:
        contact = await s.get(Contact, case.contact_id)
    assert contact is not None
    await login(client, "kl_staff")
    assert (await client.get("/console/conversations")).status == 404
    assert (await client.get(f"/console/conversations/{contact.public_id}")).status == 404
    await login(client, "operator1")
    assert (await client.get(f"/console/conversations/{contact.public_id}")).status == 200
    assert (await client.get("/console/conversations/" + "0" * 32)).status == 404


async def test_operators_search_messages_across_conversations(client) -> None:
    async with client.app[SESSIONMAKER]() as s, s.begin():
        a = await messages.get_or_create_contact(s, "webchat", "search-a")
        b = await messages.get_or_create_contact(s, "telegram", "search-b")
        await messages.store_inbound(s, a, "webchat", "s1", "gaji 100% belum dibayar <b>")
        await messages.store_inbound(s, b, "telegram", "s2", "paspor ditahan majikan")
        await messages.store_inbound(s, b, "telegram", "s3", "gaji_pokok berapa")
    await login(client, "kl_staff")
    assert (await client.get("/console/search?q=gaji")).status == 404
    await login(client, "operator1")
    found = await (await client.get("/console/search?q=gaji")).text()
    assert "gaji 100% belum dibayar &lt;b&gt;" in found and "paspor" not in found
    assert a.public_id[:8] in found
    # LIKE wildcards in the query are taken literally.
    percent = await (await client.get("/console/search", params={"q": "100%"})).text()
    assert "belum dibayar" in percent and "gaji_pokok" not in percent
    underscore = await (await client.get("/console/search", params={"q": "i_p"})).text()
    assert "gaji_pokok" in underscore and "belum dibayar" not in underscore
    by_channel = await (await client.get("/console/search?channel=telegram")).text()
    assert "paspor ditahan" in by_channel and "belum dibayar" not in by_channel
    transcript = await client.get(f"/console/conversations/{b.public_id}")
    assert transcript.status == 200 and "paspor ditahan majikan" in await transcript.text()


async def test_a_message_the_bot_gave_up_on_shows_its_error_in_the_handoff(client) -> None:
    async with client.app[SESSIONMAKER]() as s, s.begin():
        contact = await messages.get_or_create_contact(s, "telegram", "poisoned")
        stored = await messages.store_inbound(s, contact, "telegram", "p1", "cek status sy")
        assert stored is not None
        await failed_turns.note_failure(s, stored.id, "action failed: action_case_status", ())
        await failed_turns.hand_over(s, contact, stored.id, "Maaf, …")
    await login(client, "operator1")
    handoffs = await (await client.get("/console/conversations")).text()
    assert contact.public_id[:8] in handoffs
    page = await (await client.get(f"/console/conversations/{contact.public_id}")).text()
    assert "Bot gagal memproses pesan ini (1 kali): action failed: action_case_status" in page
