"""Custom actions, run directly with a Tracker and a CollectingDispatcher (no network)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.complaints import ValidateComplaintForm
from actions.db import opened
from actions.knowledge import ActionAnswerKnowledge
from actions.language import ActionSyncLanguage
from pmi.db import create_engine, create_sessionmaker


@pytest.fixture(autouse=True)
async def action_resources() -> AsyncIterator[None]:
    """The action server's resources, as its start-up opens them."""
    async with opened():
        yield


def tracker(
    text: str = "",
    intent: str = "",
    slots: dict[str, Any] | None = None,
    entities: list[dict[str, Any]] | None = None,
    metadata: dict[str, Any] | None = None,
) -> Tracker:
    return Tracker(
        sender_id="unit-test",
        slots={"language": "id", **(slots or {})},
        latest_message={
            "text": text,
            "intent": {"name": intent, "confidence": 1.0},
            "entities": entities or [],
            "metadata": metadata or {},
        },
        events=[],
        paused=False,
        followup_action=None,
        active_loop={},
        latest_action_name="action_listen",
    )


async def test_language_slot_follows_the_metadata() -> None:
    action = ActionSyncLanguage()
    events = await action.run(CollectingDispatcher(), tracker(metadata={"language": "en"}), {})
    assert events == [SlotSet("language", "en")]
    same = await action.run(CollectingDispatcher(), tracker(metadata={"language": "id"}), {})
    assert same == []
    unsupported = await action.run(CollectingDispatcher(), tracker(metadata={"language": "fr"}), {})
    assert unsupported == []


async def test_embassy_question_without_a_country_asks_for_it() -> None:
    dispatcher = CollectingDispatcher()
    events = await ActionAnswerKnowledge().run(
        dispatcher, tracker("nomor kbri", "ask_embassy_contact"), {}
    )
    assert [m["response"] for m in dispatcher.messages] == ["utter_ask_country"]
    assert events == [SlotSet("pending_topic", "ask_embassy_contact")]


async def test_embassy_question_with_a_country_answers_in_the_worker_language() -> None:
    dispatcher = CollectingDispatcher()
    country = [{"entity": "country", "value": "HK"}]
    await ActionAnswerKnowledge().run(
        dispatcher,
        tracker("embassy number hong kong", "ask_embassy_contact", {"language": "en"}, country),
        {},
    )
    [message] = dispatcher.messages
    assert "KJRI Hong Kong" in message["text"] and "Source:" in message["text"]


async def test_answer_to_a_pending_question_continues_the_topic() -> None:
    dispatcher = CollectingDispatcher()
    events = await ActionAnswerKnowledge().run(
        dispatcher,
        tracker(
            "jepang",
            "inform",
            {"pending_topic": "ask_embassy_contact"},
            [{"entity": "country", "value": "JP"}],
        ),
        {},
    )
    assert "KBRI Tokyo" in dispatcher.messages[0]["text"]
    assert events == [SlotSet("pending_topic", None)]


@pytest.mark.parametrize(
    ("answer", "category"),
    [
        ("1", "unpaid_wages"),
        ("2", "passport_held"),
        ("paspor sy ditahan agen", "passport_held"),
        ("gaji tak bayar", "unpaid_wages"),
        ("majikan suruh kerja di 3 rumah", "other"),
        ("xyz", None),
        ("12", None),
    ],
)
def test_problem_answer_maps_to_a_category(answer: str, category: str | None) -> None:
    dispatcher = CollectingDispatcher()
    result = ValidateComplaintForm().validate_problem(answer, dispatcher, tracker(answer), {})
    assert result["problem"] == category
    assert bool(dispatcher.messages) == (category is None)  # re-asked only when invalid
    if category is None:  # asked again once; a second refusal files it as "other"
        again = tracker(answer, slots={"complaint_retries": result["complaint_retries"]})
        second = ValidateComplaintForm().validate_problem(answer, CollectingDispatcher(), again, {})
        assert second["problem"] == "other"


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("1", {"contact_method": "chat"}),
        ("telepon", {"contact_method": "phone"}),
        ("+60 12-345 6789", {"contact_method": "phone", "phone": "+60123456789"}),
        ("besok", {"contact_method": None}),
    ],
)
def test_contact_method_accepts_a_number_a_word_or_a_phone(answer: str, expected: dict) -> None:
    result = ValidateComplaintForm().validate_contact_method(
        answer, CollectingDispatcher(), tracker(answer), {}
    )
    assert result == expected


@pytest.mark.parametrize(
    ("answer", "expected"),
    [("yes", "yes"), ("no", "no"), ("iya", "yes"), ("tak", "no"), ("?", None)],
)
def test_consent_must_be_a_clear_yes_or_no(answer: str, expected: str | None) -> None:
    result = ValidateComplaintForm().validate_consent(
        answer, CollectingDispatcher(), tracker(answer), {}
    )
    assert result == {"consent": expected}


async def test_a_bare_agency_name_is_taken_as_a_licence_question(app_db, monkeypatch) -> None:
    engine = create_engine(app_db)
    monkeypatch.setattr("actions.knowledge.sessions", lambda: create_sessionmaker(engine))
    dispatcher = CollectingDispatcher()
    agency = [{"entity": "agency", "value": "pt cahaya abadi"}]
    await ActionAnswerKnowledge().run(
        dispatcher, tracker("pt cahaya abadi", "inform", entities=agency), {}
    )
    await engine.dispose()
    assert "P3MI" in dispatcher.messages[0]["text"]
    assert len(dispatcher.messages) == 1  # no registry imported: no listed/not-listed line


async def test_a_turn_run_again_files_no_second_case(app_db, monkeypatch) -> None:
    """Rasa killed mid-turn runs the turn again: the same worker message files one case."""
    from sqlalchemy import func, select

    from actions.complaint_filing import ActionSubmitComplaint
    from actions.emergency import ActionEmergency
    from pmi.models import Case, StaffAlert

    engine = create_engine(app_db)
    for module in ("actions.complaint_filing", "actions.emergency"):
        monkeypatch.setattr(f"{module}.sessions", lambda: create_sessionmaker(engine))
    form = {
        "form_country": "TW",
        "city": "Taipei",
        "problem": "unpaid_wages",
        "description": "gaji 3 bulan belum dibayar",
        "contact_method": "chat",
        "consent": "yes",
    }
    consent = tracker("ya setuju", "affirm", slots=form, metadata={"message_id": "41"})
    danger = tracker("tolong sy dipukul", "report_emergency", metadata={"message_id": "42"})
    references = []
    for _ in range(2):
        dispatcher = CollectingDispatcher()
        await ActionSubmitComplaint().run(dispatcher, consent, {})
        references.append(dispatcher.messages[0]["reference"])
        await ActionEmergency().run(CollectingDispatcher(), danger, {})
    async with create_sessionmaker(engine)() as s:
        cases = await s.scalar(select(func.count()).select_from(Case))
        alerts = await s.scalar(select(func.count()).select_from(StaffAlert))
    await engine.dispose()
    assert references[0] == references[1]
    assert cases == 2 and alerts == 2  # one complaint, one emergency, one alert each


async def test_over_the_urgent_case_cap_the_worker_gets_the_contacts_but_no_case(
    app_db, monkeypatch
) -> None:
    """`case_limit_reached` (the web chat's cap per address): contacts, no case, no alert."""
    from sqlalchemy import func, select

    from actions.danger import ActionSelfHarm
    from actions.emergency import DETAIL_SLOTS, ActionEmergency
    from pmi.models import Case, StaffAlert

    engine = create_engine(app_db)
    for module in ("actions.emergency", "actions.danger"):
        monkeypatch.setattr(f"{module}.sessions", lambda: create_sessionmaker(engine))
    capped = {"message_id": "7", "case_limit_reached": True}
    dispatcher = CollectingDispatcher()
    events = await ActionEmergency().run(
        dispatcher, tracker("tolong sy dipukul", "report_emergency", metadata=capped), {}
    )
    [message] = dispatcher.messages
    assert message["response"] == "utter_emergency_contacts_only"  # no "officers were told"
    assert "+62 812 9007 0027" in message["contacts"] and "reference" not in message
    # No questions whose answers would go nowhere: the form is not started.
    assert events == [
        *(SlotSet(slot, None) for slot in DETAIL_SLOTS),
        FollowupAction("action_listen"),
    ]
    harm = CollectingDispatcher()
    assert await ActionSelfHarm().run(harm, tracker("mau bunuh diri", metadata=capped), {}) == []
    [lines] = harm.messages
    assert lines["response"] is None and "Kemlu" in lines["text"]
    async with create_sessionmaker(engine)() as s:
        cases = await s.scalar(select(func.count()).select_from(Case))
        alerts = await s.scalar(select(func.count()).select_from(StaffAlert))
    assert cases == 0 and alerts == 0
    # Not capped: the urgent case as always.
    opened = CollectingDispatcher()
    await ActionEmergency().run(
        opened, tracker("tolong", "report_emergency", metadata={"message_id": "8"}), {}
    )
    assert opened.messages[0]["response"] == "utter_emergency_contacts"
    async with create_sessionmaker(engine)() as s:
        assert await s.scalar(select(func.count()).select_from(Case)) == 1
    await engine.dispose()
