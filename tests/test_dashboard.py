"""Dashboard numbers (SQLite and PostgreSQL) and the page, limited to a mission's cases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import pytest
from aiohttp.test_utils import TestClient

from pmi import dashboard
from pmi.models import Case, CaseEvent, Contact, InboundMessage
from tests.console_helpers import console_client, login, new_case

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # a Wednesday
KL, TAIPEI = "KBRI-KUALA-LUMPUR", "KDEI-TAIPEI"


async def _world(s) -> None:  # type: ignore[no-untyped-def]
    """Four cases (one too old), three workers' conversations with Rasa's intents."""
    k = Contact(channel="webchat", channel_user_id="dash-k", language="ms")
    t = Contact(channel="telegram", channel_user_id="dash-t", language="id")
    x = Contact(channel="webchat", channel_user_id="dash-x", language="en")
    s.add_all([k, t, x])
    await s.flush()

    def case(ref: str, contact: Contact | None, mission: str, country: str, category: str,
             created: datetime, ack_minutes: float | None) -> Case:  # fmt: skip
        return Case(
            reference=ref, contact_id=contact.id if contact else None,
            conversation_id=contact.public_id if contact else "x", category=category,
            country=country, mission_code=mission, created_at=created, updated_at=created,
            acknowledged_at=created + timedelta(minutes=ack_minutes) if ack_minutes else None,
        )  # fmt: skip

    a = case("PMI-DASHAA", k, KL, "MY", "unpaid_wages", NOW - timedelta(days=1), 10)
    b = case("PMI-DASHBB", k, KL, "MY", "passport_held", NOW - timedelta(days=8), 30)
    c = case("PMI-DASHCC", t, TAIPEI, "TW", "unpaid_wages", NOW - timedelta(days=2), 50)
    old = case("PMI-DASHDD", t, TAIPEI, "TW", "abuse", NOW - timedelta(days=60), 5)
    s.add_all([a, b, c, old])
    await s.flush()

    def status(case: Case, to: str, hours: float) -> CaseEvent:
        at = case.created_at + timedelta(hours=hours)
        return CaseEvent(case_id=case.id, kind="status", detail={"to": to}, at=at)

    s.add_all(
        [
            status(a, "acknowledged", 0.1),
            status(a, "resolved", 48),
            status(b, "in_progress", 1),
            status(b, "closed", 24),
            status(b, "resolved", 30),  # only the first move to done counts
            status(old, "resolved", 2),  # outside the period
            CaseEvent(case_id=c.id, kind="note", detail={"to": "resolved"}, at=NOW),
        ]
    )
    messages = [
        (k, "greet"),
        (k, "nlu_fallback"),
        (k, None),
        (t, "nlu_fallback"),
        (t, "ask_placement_cost"),
        (x, "nlu_fallback"),
    ]
    for i, (contact, intent) in enumerate(messages):
        s.add(
            InboundMessage(
                contact_id=contact.id, channel=contact.channel, external_id=f"d{i}",
                text="...", intent=intent, received_at=NOW - timedelta(hours=i + 1),
            )
        )  # fmt: skip
    s.add(
        InboundMessage(
            contact_id=x.id, channel="webchat", external_id="old", text="...",
            intent="nlu_fallback", received_at=NOW - timedelta(days=60),
        )
    )  # fmt: skip
    for contact in (k, t, x):
        contact.last_inbound_at = NOW - timedelta(hours=1)
    await s.flush()


async def test_numbers_for_everyone(sessions) -> None:
    async with sessions() as s, s.begin():
        await _world(s)
        d = await dashboard.compute(s, since=NOW - timedelta(weeks=4), now=NOW)
    assert d.total_cases == 3
    assert d.cases_per_week == [
        (date(2026, 10, 26), 0),
        (date(2026, 11, 2), 0),
        (date(2026, 11, 9), 0),
        (date(2026, 11, 16), 1),
        (date(2026, 11, 23), 2),
    ]
    assert d.by_category == [("unpaid_wages", 2), ("passport_held", 1)]
    assert d.by_country == [("MY", 2), ("TW", 1)]
    assert d.by_mission == [(KL, 2), (TAIPEI, 1)]
    assert d.median_ack_minutes == pytest.approx(30)
    assert d.median_resolve_hours == pytest.approx(36)  # 48 h and 24 h
    assert (d.classified_messages, d.fallback_messages) == (5, 3)
    assert d.fallback_rate == pytest.approx(0.6)
    assert d.languages == [("en", 1), ("id", 1), ("ms", 1)]


async def test_numbers_for_one_mission(sessions) -> None:
    async with sessions() as s, s.begin():
        await _world(s)
        d = await dashboard.compute(s, since=NOW - timedelta(weeks=4), now=NOW, mission_code=KL)
        empty = await dashboard.compute(
            s, since=NOW - timedelta(weeks=4), now=NOW, mission_code="KJRI-PENANG"
        )
    assert d.total_cases == 2 and d.by_mission == [(KL, 2)]
    assert d.by_country == [("MY", 2)]
    assert d.median_ack_minutes == pytest.approx(20)
    assert d.median_resolve_hours == pytest.approx(36)
    assert (d.classified_messages, d.fallback_messages) == (2, 1)
    assert d.languages == [("ms", 1)]
    assert empty.total_cases == 0 and empty.median_ack_minutes is None
    assert empty.fallback_rate is None and empty.languages == []
    assert [n for _, n in empty.cases_per_week] == [0] * 5


@pytest.fixture
async def client(app_db: str) -> AsyncIterator[TestClient]:
    async with console_client(app_db) as client:
        yield client


async def test_dashboard_page_shows_charts_of_the_users_scope(client) -> None:
    await new_case(client, "MY", "Kuala Lumpur", category="passport_held")
    await new_case(client, "TW", category="abuse")
    await login(client, "operator1")
    page = await (await client.get("/console/dashboard")).text()
    assert '<p class="figure" id="total-cases">2</p>' in page
    # Eight charts; no conversation, no overdue and no closed case yet: those three say so.
    assert page.count("<svg") == 5 and page.count("Belum ada data") == 3
    assert "style=" not in page and "<script" not in page
    assert "Paspor ditahan: 1" in page and "KDEI-TAIPEI: 1" in page
    await login(client, "kl_staff")
    resp = await client.get("/console/dashboard?weeks=4")
    page = await resp.text()
    assert resp.status == 200 and "Content-Security-Policy" in resp.headers
    assert '<p class="figure" id="total-cases">1</p>' in page
    assert "Paspor ditahan: 1" in page and "TW" not in page and "KDEI-TAIPEI" not in page
    assert "Kasus per misi" not in page
    assert (await client.get("/console/dashboard?weeks=nonsense")).status == 200
