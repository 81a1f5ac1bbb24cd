"""Case work: owners (assign, take, my cases, unassigned first), next steps and deadlines
(overdue first, clock moved), on both databases and through the console (CSRF, isolation)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.console.context import CLOCK
from bot.keys import SESSIONMAKER
from pmi import cases, casework, deadlines, messages, staff
from pmi.deadline_settings import DeadlineSettings
from pmi.missions import Missions
from pmi.models import AuditEntry, Case, CaseEvent
from pmi.outcomes import OutcomeError, Outcomes, close_case
from pmi.settings import load_settings
from tests.console_helpers import PASSWORD, console_client, csrf_of, login, new_case

KL = "KBRI-KUALA-LUMPUR"


@pytest.fixture(scope="module")
def missions() -> Missions:
    return Missions.load(load_settings().content.missions_file)


async def _case(s, missions: Missions, user_id: str, country: str, city: str | None) -> Case:
    contact = await messages.get_or_create_contact(s, "webchat", user_id)
    return await cases.create_case(
        s,
        conversation_id=contact.public_id,
        category="unpaid_wages",
        mission=missions.route(country, city),
        country=country,
        city=city,
    )


# --- storage (SQLite and PostgreSQL) ---------------------------------------------------


async def test_assignment_is_recorded_and_reassignment_audited(sessions, missions) -> None:
    async with sessions() as s, s.begin():
        case = await _case(s, missions, "w1", "MY", "Kuala Lumpur")
        a = await staff.create_user(s, "kl_a", PASSWORD, "mission", KL)
        b = await staff.create_user(s, "kl_b", PASSWORD, "mission", KL)
        assert await casework.assign(s, case, a, a) is True
        assert await casework.assign(s, case, a, a) is False  # no change, no entry
        await casework.assign(s, case, b, a)
        await s.flush()
        events = (
            await s.scalars(
                select(CaseEvent).where(CaseEvent.case_id == case.id, CaseEvent.kind == "owner")
            )
        ).all()
        audit = (
            await s.scalars(select(AuditEntry).where(AuditEntry.target == case.reference))
        ).all()
    assert case.owner_id == b.id
    assert [e.detail for e in events] == [
        {"from": None, "to": "kl_a"},
        {"from": "kl_a", "to": "kl_b"},
    ]
    assert [e.action for e in audit] == ["case_assign", "case_reassign"]


async def test_an_officer_of_another_mission_may_not_own_a_case(sessions, missions) -> None:
    async with sessions() as s, s.begin():
        case = await _case(s, missions, "w2", "MY", "Kuala Lumpur")
        taipei = await staff.create_user(s, "tw_a", PASSWORD, "mission", "KDEI-TAIPEI")
        kl = await staff.create_user(s, "kl_c", PASSWORD, "mission", KL)
        operator = await staff.create_user(s, "op_c", PASSWORD, "operator")
        with pytest.raises(casework.CaseworkError):
            await casework.assign(s, case, taipei, operator)
        officers = {o.username for o in await casework.officers_for(s, case)}
    assert {"kl_c", "op_c"} <= officers and "tw_a" not in officers
    assert case.owner_id is None and kl.id


async def test_unassigned_cases_are_counted_and_listed_first(sessions, missions) -> None:
    async with sessions() as s, s.begin():
        owned = await _case(s, missions, "w3", "MY", "Kuala Lumpur")
        officer = await staff.create_user(s, "kl_d", PASSWORD, "mission", KL)
        await casework.assign(s, owned, officer, officer)
        free = await _case(s, missions, "w4", "MY", "Kuala Lumpur")
        older_free = await _case(s, missions, "w5", "MY", "Kuala Lumpur")
        count = await casework.unassigned_count(s, KL)
        rows = await cases.visible_cases(s, mission_code=KL, filters={})
        mine = await cases.visible_cases(s, mission_code=KL, filters={"owner_id": officer.id})
    assert count == 2
    assert rows[-1].id == owned.id and {r.id for r in rows[:2]} == {free.id, older_free.id}
    assert [c.id for c in mine] == [owned.id]


# --- console ---------------------------------------------------------------------------


@pytest.fixture
async def client(app_db: str) -> AsyncIterator[TestClient]:
    async with console_client(app_db) as client:
        yield client


async def _user_id(client: TestClient, username: str) -> int:
    async with client.app[SESSIONMAKER]() as s:
        user = await staff.find_user(s, username)
        assert user is not None
        return user.id


async def test_staff_take_a_case_and_see_it_under_my_cases(client) -> None:
    case = await new_case(client, "MY", "Kuala Lumpur")
    other = await new_case(client, "MY", "Kuala Lumpur", category="passport_held")
    await login(client, "kl_staff")
    token = await csrf_of(client, f"/console/cases/{case.reference}")
    resp = await client.post(
        f"/console/cases/{case.reference}/assign",
        data={"csrf": token, "officer": "me"},
        allow_redirects=False,
    )
    assert resp.status == 303
    page = await (await client.get(f"/console/cases/{case.reference}")).text()
    assert '<strong id="owner">kl_staff</strong>' in page
    mine = await (await client.get("/console/?mine=1")).text()
    assert case.reference in mine and other.reference not in mine
    inbox = await (await client.get("/console/")).text()
    assert "Belum ada petugas: 1" in inbox


async def test_assign_refuses_a_missing_csrf_token(client) -> None:
    case = await new_case(client, "MY", "Kuala Lumpur")
    await login(client, "kl_staff")
    for data in ({"officer": "me"}, {"officer": "me", "csrf": ""}):
        resp = await client.post(
            f"/console/cases/{case.reference}/assign", data=data, allow_redirects=False
        )
        assert resp.status == 403
    async with client.app[SESSIONMAKER]() as s:
        assert (await s.get(Case, case.id)).owner_id is None  # type: ignore[union-attr]


async def test_mission_staff_cannot_assign_another_missions_case(client) -> None:
    taiwan = await new_case(client, "TW", "Taipei")
    await login(client, "kl_staff")
    token = await csrf_of(client, "/console/")
    resp = await client.post(
        f"/console/cases/{taiwan.reference}/assign",
        data={"csrf": token, "officer": "me"},
        allow_redirects=False,
    )
    assert resp.status == 404
    async with client.app[SESSIONMAKER]() as s:
        assert (await s.get(Case, taiwan.id)).owner_id is None  # type: ignore[union-attr]
        denied = await s.scalar(select(AuditEntry).where(AuditEntry.action == "denied"))
    assert denied is not None and denied.target == taiwan.reference


async def test_staff_see_only_their_missions_officers(client) -> None:
    case = await new_case(client, "MY", "Kuala Lumpur")
    async with client.app[SESSIONMAKER]() as s, s.begin():
        await staff.create_user(s, "tw_staff", PASSWORD, "mission", "KDEI-TAIPEI")
    await login(client, "kl_staff")
    page = await (await client.get(f"/console/cases/{case.reference}")).text()
    assert ">kl_staff</option>" in page and "tw_staff" not in page
    token = await csrf_of(client, "/console/")
    resp = await client.post(
        f"/console/cases/{case.reference}/assign",
        data={"csrf": token, "officer": str(await _user_id(client, "tw_staff"))},
        allow_redirects=False,
    )
    assert resp.status == 400


# --- next step and deadlines -----------------------------------------------------------


def test_deadlines_follow_priority_working_days_and_category() -> None:
    settings = DeadlineSettings(categories={"trafficking": DeadlineSettings().urgent})
    friday = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
    normal = Case(priority="normal", category="unpaid_wages", created_at=friday, status="new")
    urgent = Case(priority="urgent", category="emergency", created_at=friday, status="new")
    trafficking = Case(priority="normal", category="trafficking", created_at=friday)
    assert deadlines.first_due(normal, settings) == datetime(2026, 12, 8, 10, 0, tzinfo=UTC)
    assert deadlines.first_due(urgent, settings) == friday + timedelta(hours=1)
    assert deadlines.first_due(trafficking, settings) == friday + timedelta(hours=1)
    assert deadlines.follow_up_due(urgent, settings, friday) == friday + timedelta(hours=24)
    assert deadlines.follow_up_due(normal, settings, friday) == friday + timedelta(days=7)
    late = friday + timedelta(hours=2)
    assert deadlines.is_overdue(urgent, settings, late)
    assert not deadlines.is_overdue(normal, settings, late)
    assert deadlines.overdue_first([normal, urgent], settings, late) == [urgent, normal]


async def test_next_step_is_stored_on_the_timeline_and_audited(sessions, missions) -> None:
    due = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    async with sessions() as s, s.begin():
        case = await _case(s, missions, "w6", "MY", "Kuala Lumpur")
        officer = await staff.create_user(s, "kl_e", PASSWORD, "mission", KL)
        await casework.set_next_step(s, case, "Telepon agensi", due, officer)
        await s.flush()
        event = await s.scalar(select(CaseEvent).where(CaseEvent.kind == "next_step"))
        entry = await s.scalar(select(AuditEntry).where(AuditEntry.action == "case_next_step"))
        await s.refresh(case)
    assert case.next_action == "Telepon agensi" and case.due_at == due
    assert event is not None and event.detail["text"] == "Telepon agensi"
    assert entry is not None and entry.target == case.reference


async def test_overdue_cases_are_marked_and_listed_first_with_the_clock_moved(client) -> None:
    late = await new_case(client, "MY", "Kuala Lumpur")
    await login(client, "kl_staff")
    token = await csrf_of(client, f"/console/cases/{late.reference}")
    recent = await new_case(client, "MY", "Kuala Lumpur", category="passport_held")
    resp = await client.post(
        f"/console/cases/{late.reference}/next_step",
        data={"csrf": token, "next_action": "Telepon majikan", "due": "2026-01-01T08:00"},
        allow_redirects=False,
    )
    assert resp.status == 303
    inbox = await (await client.get("/console/")).text()
    assert inbox.index(late.reference) < inbox.index(recent.reference)
    assert inbox.count("terlambat") == 1
    client.app[CLOCK].offset = timedelta(days=30)  # every first contact is now late
    assert (await (await client.get("/console/")).text()).count("terlambat") == 2
    page = await (await client.get(f"/console/cases/{late.reference}")).text()
    assert "Telepon majikan" in page and "2026-01-01 08:00 UTC" in page


async def test_next_step_needs_csrf_and_the_case_s_mission(client) -> None:
    taiwan = await new_case(client, "TW", "Taipei")
    mine = await new_case(client, "MY", "Kuala Lumpur")
    await login(client, "kl_staff")
    form = {"next_action": "x"}
    resp = await client.post(f"/console/cases/{mine.reference}/next_step", data=form)
    assert resp.status == 403
    form["csrf"] = await csrf_of(client, "/console/")
    resp = await client.post(f"/console/cases/{taiwan.reference}/next_step", data=form)
    assert resp.status == 404
    async with client.app[SESSIONMAKER]() as s:
        assert (await s.get(Case, taiwan.id)).next_action is None  # type: ignore[union-attr]
        assert (await s.get(Case, mine.id)).next_action is None  # type: ignore[union-attr]


# --- closing with an outcome -----------------------------------------------------------


async def test_closing_needs_an_outcome_and_a_note(sessions, missions) -> None:
    outcomes = Outcomes.load(load_settings().content.case_outcomes_file)
    assert outcomes.label("wages_paid", "en") == "Wages paid"
    async with sessions() as s, s.begin():
        case = await _case(s, missions, "w7", "MY", "Kuala Lumpur")
        officer = await staff.create_user(s, "kl_f", PASSWORD, "mission", KL)
        for outcome, note in (("made_up", "done"), ("wages_paid", "  ")):
            with pytest.raises(OutcomeError):
                await close_case(s, case, outcomes, outcome, note, officer)
        await close_case(s, case, outcomes, "wages_paid", "Gaji dibayar penuh", officer)
        await s.flush()
        event = await s.scalar(select(CaseEvent).where(CaseEvent.kind == "outcome"))
    assert case.status == "closed"
    assert event is not None and event.detail == {
        "outcome": "wages_paid",
        "text": "Gaji dibayar penuh",
    }


async def test_console_closes_only_with_an_outcome_and_csrf(client) -> None:
    case = await new_case(client, "MY", "Kuala Lumpur")
    taiwan = await new_case(client, "TW", "Taipei")
    await login(client, "kl_staff")
    token = await csrf_of(client, f"/console/cases/{case.reference}")
    url = f"/console/cases/{case.reference}"
    plain = await client.post(f"{url}/status", data={"csrf": token, "status": "closed"})
    assert plain.status == 400
    form = {"outcome": "repatriated", "note": "Pulang 2 Des"}
    assert (await client.post(f"{url}/close", data=form)).status == 403
    other = await client.post(
        f"/console/cases/{taiwan.reference}/close", data={**form, "csrf": token}
    )
    assert other.status == 404
    done = await client.post(f"{url}/close", data={**form, "csrf": token}, allow_redirects=False)
    assert done.status == 303
    page = await (await client.get(url)).text()
    assert "[Dipulangkan ke Indonesia]" in page
    async with client.app[SESSIONMAKER]() as s:
        assert (await s.get(Case, case.id)).status == "closed"  # type: ignore[union-attr]
        assert (await s.get(Case, taiwan.id)).status == "new"  # type: ignore[union-attr]
