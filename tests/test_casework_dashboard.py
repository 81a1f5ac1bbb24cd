"""The case-work figures of the dashboard (open cases per officer, overdue per mission, how
closed cases ended, time to a first word from a person), on both databases and on the page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient

from bot.keys import SESSIONMAKER
from pmi import cases, casework, casework_dashboard, messages, staff
from pmi.db import utcnow
from pmi.deadline_settings import DeadlineSettings
from pmi.missions import Missions
from pmi.outcomes import Outcomes, close_case
from pmi.settings import load_settings
from tests.console_helpers import PASSWORD, console_client, login, new_case

CONTENT = load_settings().content


async def test_figures_of_case_work(sessions) -> None:
    missions = Missions.load(CONTENT.missions_file)
    now = utcnow()
    async with sessions() as s, s.begin():
        officer = await staff.create_user(s, "kl_dash", PASSWORD, "mission", "KBRI-KUALA-LUMPUR")
        made = []
        for i, city in enumerate(("Kuala Lumpur", "Kuala Lumpur", "Johor Bahru")):
            contact = await messages.get_or_create_contact(s, "webchat", f"dash-{i}")
            case = await cases.create_case(
                s,
                conversation_id=contact.public_id,
                category="unpaid_wages",
                mission=missions.route("MY", city),
                country="MY",
                city=city,
            )
            case.created_at = now - timedelta(days=10)
            made.append(case)
        await casework.assign(s, made[0], officer, officer)
        at = made[1].created_at + timedelta(hours=3)
        event = await cases.add_event(s, made[1], "message", {"text": "Halo"}, actor="staff:x")
        event.at = at
        outcomes = Outcomes.load(CONTENT.case_outcomes_file)
        await close_case(s, made[1], outcomes, "wages_paid", "dibayar", officer)
        await s.flush()
        work = await casework_dashboard.compute(
            s, DeadlineSettings(), since=now - timedelta(days=30), now=now
        )
        kl_only = await casework_dashboard.compute(
            s,
            DeadlineSettings(),
            since=now - timedelta(days=30),
            now=now,
            mission_code="KJRI-JOHOR-BAHRU",
        )
    assert ("kl_dash", 1) in work.open_by_owner
    assert (casework_dashboard.UNASSIGNED, 1) in work.open_by_owner
    assert dict(work.overdue_by_mission) == {"KBRI-KUALA-LUMPUR": 1, "KJRI-JOHOR-BAHRU": 1}
    assert work.by_outcome == [("wages_paid", 1)]
    assert work.median_first_contact_hours == pytest.approx(3.0)
    assert kl_only.open_by_owner == [(casework_dashboard.UNASSIGNED, 1)]
    assert kl_only.by_outcome == [] and kl_only.median_first_contact_hours is None


@pytest.fixture
async def client(app_db: str) -> AsyncIterator[TestClient]:
    async with console_client(app_db) as client:
        yield client


async def test_the_dashboard_page_shows_case_work(client) -> None:
    case = await new_case(client, "MY", "Kuala Lumpur")
    async with client.app[SESSIONMAKER]() as s, s.begin():
        stored = await s.get(type(case), case.id)
        stored.created_at = utcnow() - timedelta(days=9)  # type: ignore[union-attr]
    await login(client, "kl_staff")
    page = await (await client.get("/console/dashboard")).text()
    assert 'id="open-by-owner"' in page and "Kasus terbuka per petugas" in page
    assert 'id="overdue-by-mission"' in page and "KBRI-KUALA-LUMPUR" in page
    assert 'id="median-first-contact"' in page
