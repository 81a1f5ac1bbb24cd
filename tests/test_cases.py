"""Case storage on SQLite and PostgreSQL: references, routing, ownership, alerts."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from pmi import cases, messages
from pmi.db import utcnow
from pmi.knowledge import Replies
from pmi.labels import CaseLabels
from pmi.missions import Missions
from pmi.models import CaseEvent, Priority, StaffAlert
from pmi.settings import load_settings

REFERENCE = re.compile(r"^PMI-[ABCDEFGHJKLMNPQRSTUVWXYZ23456789]{6}$")


@pytest.fixture(scope="module")
def missions() -> Missions:
    return Missions.load(load_settings().content.missions_file)


def test_references_are_random_and_use_only_the_unambiguous_alphabet() -> None:
    refs = {cases.new_reference() for _ in range(2000)}
    assert all(REFERENCE.match(r) for r in refs)
    assert len(refs) == 2000  # no collisions in a small sample: not sequential, not repeated


@pytest.mark.parametrize(
    ("text", "expected"),
    [("status PMI-7KQ2XR dong", "PMI-7KQ2XR"), ("pmi-7kq2xr", "PMI-7KQ2XR"), ("PMI-7KQ2X1", None)],
)
def test_reference_in_free_text(text, expected) -> None:
    assert cases.normalise_reference(text) == expected


async def test_case_is_stored_routed_and_alerted(sessions, missions) -> None:
    async with sessions() as s, s.begin():
        contact = await messages.get_or_create_contact(s, "webchat", "worker-1")
        case = await cases.create_case(
            s,
            conversation_id=contact.public_id,
            category="unpaid_wages",
            mission=missions.route("MY", "Johor Bahru"),
            consent_version=cases.CONSENT_VERSION,
            country="MY",
            city="Johor Bahru",
            description="gaji 3 bulan belum dibayar",
        )
    assert REFERENCE.match(case.reference)
    assert case.status == "new" and case.mission_code == "KJRI-JOHOR-BAHRU"
    assert case.contact_id == contact.id and case.consent_at is not None
    async with sessions() as s:
        alerts = (await s.scalars(select(StaffAlert).where(StaffAlert.case_id == case.id))).all()
        events = (await s.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id))).all()
    assert [(a.mission_code, a.reason) for a in alerts] == [("KJRI-JOHOR-BAHRU", "new_case")]
    assert [e.kind for e in events] == ["created", "alert"]


async def test_only_the_filing_conversation_sees_a_case(sessions, missions) -> None:
    async with sessions() as s, s.begin():
        owner = await messages.get_or_create_contact(s, "telegram", "111")
        other = await messages.get_or_create_contact(s, "telegram", "222")
        case = await cases.create_case(
            s,
            conversation_id=owner.public_id,
            category="passport_held",
            mission=missions.route("TW"),
        )
    async with sessions() as s:
        assert await cases.case_of_conversation(s, case.reference, owner.public_id) is not None
        assert await cases.case_of_conversation(s, case.reference, other.public_id) is None
        assert await cases.cases_of_conversation(s, other.public_id) == []


async def test_unacknowledged_urgent_cases_are_due_for_a_repeat_alert(sessions, missions) -> None:
    async with sessions() as s, s.begin():
        urgent = await cases.create_case(
            s,
            conversation_id="c-urgent",
            category=cases.EMERGENCY,
            mission=missions.route("HK"),
            priority=Priority.URGENT,
        )
        await cases.create_case(
            s, conversation_id="c-normal", category="other", mission=missions.route("HK")
        )
        urgent.last_alert_at = utcnow() - timedelta(minutes=20)
    async with sessions() as s, s.begin():
        due = await cases.unacknowledged_urgent(s, utcnow(), timedelta(minutes=15))
        assert [c.reference for c in due] == [urgent.reference]
        due[0].acknowledged_at = utcnow()
    async with sessions() as s, s.begin():
        assert await cases.unacknowledged_urgent(s, utcnow(), timedelta(minutes=15)) == []


async def test_status_change_is_recorded_and_told_to_the_worker_in_their_language(
    sessions, missions
) -> None:
    settings = load_settings()
    labels = CaseLabels.load(settings.content.case_labels_file)
    replies = Replies.load(settings.content.replies_file)
    async with sessions() as s, s.begin():
        contact = await messages.get_or_create_contact(s, "webchat", "status-worker")
        case = await cases.create_case(
            s,
            conversation_id=contact.public_id,
            category="unpaid_wages",
            mission=missions.route("TW"),
            language="en",
        )
        notice = cases.status_notice(case, "in_progress", labels, replies)
        await cases.change_status(s, case, "in_progress", "officer-1", notice)
        with pytest.raises(ValueError, match="unknown case status"):
            await cases.change_status(s, case, "lost", "officer-1")
    assert notice == (
        f"Update on report {case.reference}: it is now being handled. "
        f'Type "status {case.reference}" to see your reports.'
    )
    async with sessions() as s, s.begin():
        sent = await messages.take_pending_outbound(s, contact.id)
        events = (await s.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id))).all()
    assert [m.text for m in sent] == [notice]
    assert events[-1].kind == "status" and events[-1].actor == "officer-1"
    assert events[-1].detail == {"from": "new", "to": "in_progress"}
    assert case.acknowledged_at is not None
