"""The emergency actions (`actions/emergency.py`) called directly: where the worker is, which
mission gets the case, and the urgent case opened or added to (no Rasa server)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from actions import emergency
from actions.db import missions, opened
from pmi import messages
from pmi.cases import EMERGENCY
from pmi.models import Case, CaseEvent, CaseStatus, StaffAlert
from tests.support import make_settings

Sessions = async_sessionmaker[AsyncSession]
SENDER = "emergency-worker"
KEMLU = "+62 812 9007 0027"


@pytest.fixture(autouse=True)
async def resources() -> AsyncIterator[None]:
    """The action server's content (missions, places, contacts), as its start-up opens it."""
    async with opened():
        yield


def said(text: str, message: str | None = "1", sender: str = SENDER, **latest: Any) -> Tracker:
    """The tracker of a worker who just wrote `text` (app message id `message`); Rasa's
    sender is the contact's public id."""
    slots = {"language": "id", **latest.pop("slots", {})}
    metadata = {"message_id": message, **latest.pop("metadata", {})} if message else {}
    return Tracker.from_dict(
        {
            "sender_id": sender,
            "slots": slots,
            "latest_message": {"text": text, "metadata": metadata, **latest},
            "events": [],
            "latest_action_name": "action_listen",
        }
    )


def test_the_country_named_in_the_message_beats_the_conversations() -> None:
    tracker = said("di taiwan", entities=[{"entity": "country", "value": "TW"}],
                   slots={"country": "HK"})  # fmt: skip
    assert emergency.known_country(tracker) == "TW"


def test_a_skipped_country_is_no_country() -> None:
    assert emergency.known_country(said("tolong", slots={"country": "-"})) is None
    skipped_then_form = said("tolong", slots={"country": "-", "form_country": "SG"})
    assert emergency.known_country(skipped_then_form) == "SG"


@pytest.mark.parametrize(
    ("text", "country", "place", "mission"),
    [
        ("tolong sy di johor bahru", "MY", "Johor Bahru, Johor", "KJRI-JOHOR-BAHRU"),
        ("help me i am in kuching", "MY", "Kuching, Sarawak", "KJRI-KUCHING"),
        ("tolong di taipei", "TW", "Taipei", "KDEI-TAIPEI"),  # city = region,
    ],
)
def test_a_city_in_the_message_routes_to_its_mission(
    text: str, country: str, place: str, mission: str
) -> None:
    words, found, where = emergency.where_from(said(text))
    assert (words, found) == (text, country)
    assert where is not None and where.label == place
    assert missions().route(found, where.label).code == mission


def test_a_button_payload_names_no_place() -> None:
    assert emergency.where_from(said("/report_emergency")) == ("", None, None)


def test_without_a_place_the_conversations_country_is_kept() -> None:
    assert emergency.where_from(said("darurat", slots={"form_country": "HK"})) == (
        "darurat",
        "HK",
        None,
    )


def test_only_the_apps_flag_caps_cases() -> None:
    assert emergency.case_limit_reached(said("x", metadata={"case_limit_reached": True}))
    assert not emergency.case_limit_reached(said("x", metadata={"case_limit_reached": "true"}))
    assert not emergency.case_limit_reached(said("x", message=None))


def test_the_contacts_name_the_mission_and_the_hotline() -> None:
    johor = missions().route("MY", "Johor Bahru")
    lines = emergency.emergency_contacts(johor, "MY", "en")
    assert "KJRI Johor Bahru" in lines and KEMLU in lines and "999" in lines


async def _conversation(s: AsyncSession) -> str:
    return (await messages.get_or_create_contact(s, "webchat", "w-1")).public_id


async def _urgent(s: AsyncSession, tracker: Tracker) -> Case:
    _, country, place = emergency.where_from(tracker)
    mission = missions().route(country, place.label if place else None)
    return await emergency.new_urgent_case(s, tracker, EMERGENCY, mission, country, place)


async def _alerts(s: AsyncSession, case: Case) -> list[str]:
    rows = await s.scalars(select(StaffAlert.reason).where(StaffAlert.case_id == case.id))
    return list(rows)


async def test_an_urgent_case_takes_what_the_message_said(sessions: Sessions) -> None:
    async with sessions() as s:
        sender = await _conversation(s)
        text = "tolong sy dipukul di johor bahru"
        case = await _urgent(s, said(text, "17", sender, slots={"language": "en"}))
        alerts = await _alerts(s, case)
    assert (case.priority, case.category, case.status) == ("urgent", EMERGENCY, CaseStatus.NEW)
    assert (case.mission_code, case.country) == ("KJRI-JOHOR-BAHRU", "MY")
    assert case.city == "Johor Bahru, Johor"
    assert case.description == "tolong sy dipukul di johor bahru"
    assert (case.language, case.origin_message_id) == ("en", "17")
    assert case.contact_id is not None and case.conversation_id == sender
    assert alerts == ["new_urgent"]


async def test_a_case_opened_from_a_button_has_no_description(sessions: Sessions) -> None:
    async with sessions() as s:
        case = await _urgent(s, said("/report_emergency"))
    assert case.description is None and case.city is None
    assert case.mission_code == missions().default.code


async def test_the_same_message_opens_one_case(sessions: Sessions) -> None:
    async with sessions() as s:
        first = await _urgent(s, said("darurat", "5"))
        again = await _urgent(s, said("darurat", "5"))
        other = await _urgent(s, said("darurat", "6"))
    assert again.id == first.id and other.id != first.id


async def test_a_new_message_on_the_case_alerts_the_mission_again(sessions: Sessions) -> None:
    async with sessions() as s:
        case = await _urgent(s, said("darurat", "1"))
        await emergency.add_to_case(s, case, said("dia datang lagi", "2"), {"text": "lagi"})
        events = await s.scalars(select(CaseEvent.detail).where(CaseEvent.kind == "message"))
        assert await _alerts(s, case) == ["new_urgent", "repeat"]
        assert list(events) == [{"text": "lagi"}]


async def test_the_turn_that_opened_the_case_adds_nothing_when_run_again(
    sessions: Sessions,
) -> None:
    async with sessions() as s:
        case = await _urgent(s, said("darurat", "1"))
        await emergency.add_to_case(s, case, said("darurat", "1"), {"text": "darurat"})
        assert await _alerts(s, case) == ["new_urgent"]


async def test_a_message_without_an_app_id_is_always_added(sessions: Sessions) -> None:
    async with sessions() as s:
        case = await _urgent(s, said("darurat", "1"))
        await emergency.add_to_case(s, case, said("tolong", None), {"text": "tolong"})
        assert await _alerts(s, case) == ["new_urgent", "repeat"]


@pytest.mark.parametrize(
    ("safe", "last"),
    [("yes", ["phone"]), ("no", ["safe_contact"]), ("unknown", ["safe_contact"]), (None, [])],
)
async def test_the_form_asks_for_a_phone_only_when_the_chat_is_safe(
    safe: str | None, last: list[str]
) -> None:
    form = emergency.ValidateEmergencyForm()
    tracker = said("x", slots={"safe_to_reply": safe})
    slots = await form.required_slots([], CollectingDispatcher(), tracker, {})
    assert slots == ["form_country", "location", "safe_to_reply", *last]


async def test_the_action_routes_johor_bahru_to_its_consulate(app_db: str) -> None:
    """The whole action against its own database: the case, the reply, the form's slots."""
    async with opened(make_settings(app_db)) as opened_now:
        dispatcher = CollectingDispatcher()
        events = await emergency.ActionEmergency().run(
            dispatcher, said("tolong saya di johor bahru", "9"), {}
        )
        async with opened_now.sessions() as s:
            [case] = (await s.scalars(select(Case))).all()
    [message] = dispatcher.messages
    assert message["response"] == "utter_emergency_contacts"
    assert message["mission"] == "KJRI Johor Bahru" and message["reference"] == case.reference
    assert KEMLU in message["contacts"]
    assert case.mission_code == "KJRI-JOHOR-BAHRU"
    assert SlotSet("emergency_case", case.reference) in events
    assert SlotSet("location", "Johor Bahru, Johor") in events
    assert SlotSet("form_country", "MY") in events


async def test_the_open_case_is_the_slots_while_it_is_open(sessions: Sessions) -> None:
    async with sessions() as s:
        case = await _urgent(s, said("darurat"))
        tracker = said("lagi", "2", slots={"emergency_case": case.reference})
        assert await emergency.open_case(s, tracker) is case
        stranger = said("lagi", "2", "another-worker", slots={"emergency_case": case.reference})
        assert await emergency.open_case(s, stranger) is None
        assert await emergency.open_case(s, said("lagi", "2")) is None  # no case slot
        case.status = CaseStatus.CLOSED
        await s.flush()
        assert await emergency.open_case(s, tracker) is None
