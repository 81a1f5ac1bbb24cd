"""The console's case and conversation views (`bot/console/views.py`): who may see what
(404 and an audit entry otherwise), the inbox filters, overdue cases, the live alerts."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select, update

from bot.console.views import MAX_TEXT, scope
from bot.keys import SESSIONMAKER
from pmi import messages
from pmi.db import utcnow
from pmi.models import AuditEntry, Case, Priority, Role, StaffUser
from tests.console_helpers import console_client, csrf_of, login, new_case


@pytest.fixture
async def client(app_db: str) -> AsyncIterator[TestClient]:
    async with console_client(app_db) as client:
        yield client


async def _audit(client: TestClient, action: str) -> list[tuple[str | None, dict, str]]:
    """(target, detail, user name) of each audit entry of `action`, oldest first."""
    async with client.app[SESSIONMAKER]() as s:
        rows = await s.execute(
            select(AuditEntry.target, AuditEntry.detail, StaffUser.username)
            .join(StaffUser, StaffUser.id == AuditEntry.user_id)
            .where(AuditEntry.action == action)
            .order_by(AuditEntry.id)
        )
        return [tuple(row) for row in rows.all()]  # type: ignore[misc]


def test_only_mission_staff_are_scoped_to_their_mission() -> None:
    kl = "KBRI-KUALA-LUMPUR"
    assert scope(StaffUser(username="m", role=Role.MISSION, mission_code=kl)) == kl
    assert scope(StaffUser(username="o", role=Role.OPERATOR, mission_code=kl)) is None
    assert scope(StaffUser(username="a", role=Role.ADMIN)) is None


async def test_another_missions_case_is_not_found_and_the_attempt_audited(
    client: TestClient,
) -> None:
    taiwan = await new_case(client, "TW")
    await login(client, "kl_staff")
    page = await client.get(f"/console/cases/{taiwan.reference.lower()}")
    assert page.status == 404 and taiwan.reference not in await page.text()
    assert await _audit(client, "denied") == [(taiwan.reference, {"action": "view"}, "kl_staff")]
    assert await _audit(client, "view_case") == []


async def test_an_unknown_case_is_not_found_and_audited_too(client: TestClient) -> None:
    await login(client, "operator1")
    assert (await client.get("/console/cases/PMI-NOPE00")).status == 404
    assert await _audit(client, "denied") == [("PMI-NOPE00", {"action": "view"}, "operator1")]


async def test_reading_a_case_is_audited(client: TestClient) -> None:
    kl = await new_case(client, "MY", "Shah Alam")
    await login(client, "kl_staff")
    assert (await client.get(f"/console/cases/{kl.reference.lower()}")).status == 200
    assert await _audit(client, "view_case") == [(kl.reference, {}, "kl_staff")]


async def test_an_unknown_case_action_or_an_overlong_note_is_refused(client: TestClient) -> None:
    case = await new_case(client, "HK")
    await login(client, "operator1")
    token = await csrf_of(client, f"/console/cases/{case.reference}")
    url = f"/console/cases/{case.reference}"
    long_note = {"csrf": token, "text": "x" * (MAX_TEXT + 1)}
    assert (await client.post(f"{url}/note", data=long_note)).status == 400
    assert (await client.post(f"{url}/note", data={"csrf": token, "text": " "})).status == 400
    bad_status = {"csrf": token, "status": "vanished"}
    assert (await client.post(f"{url}/status", data=bad_status)).status == 400


async def test_an_unknown_conversation_is_not_found(client: TestClient) -> None:
    await login(client, "operator1")
    assert (await client.get(f"/console/conversations/{secrets.token_hex(16)}")).status == 404
    assert (await client.get("/console/conversations/not-an-id")).status == 404
    assert await _audit(client, "view_conversation") == []


async def _conversation(client: TestClient) -> str:
    async with client.app[SESSIONMAKER]() as s, s.begin():
        contact = await messages.get_or_create_contact(s, "webchat", "worker-views")
        await messages.store_inbound(s, contact, "webchat", "m1", "gaji belum dibayar")
        return contact.public_id


async def test_an_operator_reads_a_whole_conversation_and_it_is_audited(
    client: TestClient,
) -> None:
    public_id = await _conversation(client)
    await login(client, "operator1")
    page = await client.get(f"/console/conversations/{public_id}")
    assert page.status == 200 and "gaji belum dibayar" in await page.text()
    assert await _audit(client, "view_conversation") == [(public_id, {}, "operator1")]


@pytest.mark.parametrize("path", ["/console/conversations", "/console/search?q=gaji"])
async def test_mission_staff_get_no_whole_conversations(client: TestClient, path: str) -> None:
    public_id = await _conversation(client)
    await login(client, "kl_staff")
    assert (await client.get(f"/console/conversations/{public_id}")).status == 404
    assert (await client.get(path)).status == 404


async def test_a_search_is_audited_only_when_it_searches(client: TestClient) -> None:
    await login(client, "operator1")
    assert (await client.get("/console/search")).status == 200
    assert await _audit(client, "search") == []
    assert (await client.get("/console/search?q=gaji&low=1")).status == 200
    [(target, detail, _)] = await _audit(client, "search")
    assert target is None and detail == {"q": True, "intent": None, "low": True}


async def _inbox(client: TestClient, query: str = "") -> str:
    page = await client.get(f"/console/{query}")
    assert page.status == 200
    return await page.text()


@pytest.mark.parametrize(
    ("query", "shown"),
    [
        ("", {"urgent", "normal"}),
        ("?priority=urgent", {"urgent"}),
        ("?priority=high", {"urgent", "normal"}),  # unknown values are ignored
        ("?country=tw", {"urgent"}),
        ("?country=taiwan", {"urgent", "normal"}),
        ("?mission=KBRI-NOWHERE", {"urgent", "normal"}),
        ("?status=closed", set()),
        ("?from=2999-01-01", set()),
        ("?from=not-a-date", {"urgent", "normal"}),
    ],
)
async def test_the_inbox_filters(client: TestClient, query: str, shown: set[str]) -> None:
    cases = {
        "urgent": await new_case(client, "TW", priority=Priority.URGENT),
        "normal": await new_case(client, "HK"),
    }
    await login(client, "operator1")
    page = await _inbox(client, query)
    assert {name for name, case in cases.items() if case.reference in page} == shown


async def test_the_inbox_until_date_includes_that_day(client: TestClient) -> None:
    case = await new_case(client, "HK")
    await login(client, "operator1")
    today = utcnow().date()
    assert case.reference in await _inbox(client, f"?to={today.isoformat()}")
    yesterday = today - timedelta(days=1)
    assert case.reference not in await _inbox(client, f"?to={yesterday.isoformat()}")


async def _age(client: TestClient, case: Case, age: timedelta) -> None:
    async with client.app[SESSIONMAKER]() as s, s.begin():
        await s.execute(update(Case).where(Case.id == case.id).values(created_at=utcnow() - age))


async def test_an_unacknowledged_case_past_its_target_is_overdue(client: TestClient) -> None:
    late = await new_case(client, "TW", priority=Priority.URGENT)
    fresh = await new_case(client, "HK", priority=Priority.URGENT)
    normal = await new_case(client, "SG")
    await _age(client, late, timedelta(minutes=16))
    await _age(client, normal, timedelta(hours=47))  # its target is 48 hours
    await login(client, "operator1")
    assert (await _inbox(client)).count("terlambat") == 1
    late_page = await (await client.get(f"/console/cases/{late.reference}")).text()
    fresh_page = await (await client.get(f"/console/cases/{fresh.reference}")).text()
    assert 'class="late"' in late_page and 'class="late"' not in fresh_page


async def test_live_alerts_list_urgent_cases_after_an_id_in_scope(client: TestClient) -> None:
    kl = await new_case(client, "MY", "Shah Alam", priority=Priority.URGENT)
    await new_case(client, "TW", priority=Priority.URGENT)
    await new_case(client, "MY", "Shah Alam")  # not urgent
    await login(client, "kl_staff")
    answer = await (await client.get("/console/alerts.json?after=-5")).json()
    assert [c["reference"] for c in answer["cases"]] == [kl.reference]
    later = await (await client.get(f"/console/alerts.json?after={kl.id}")).json()
    assert later == {"cases": []}
    assert (await client.get("/console/alerts.json?after=soon")).status == 400
