"""Workers' data rights: /dataku shows what is stored, /hapus erases it; masking of personal
data in logs, exports and alerts."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Iterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select, update

from bot.alerts import AlertService
from bot.app import create_app
from bot.commands import app_command
from bot.keys import SESSIONMAKER, SETTINGS
from devtools.net import free_port
from pmi import messages
from pmi.cases import create_case
from pmi.knowledge import Replies
from pmi.labels import CaseLabels
from pmi.logs import install_masking
from pmi.missions import Missions
from pmi.models import (
    Case,
    InboundMessage,
    InboundStatus,
    StaffAlert,
)
from pmi.privacy import mask_phone, mask_text
from tests.support import make_settings, say


@pytest.fixture
async def chat_down(app_db: str) -> AsyncIterator[TestClient]:
    """The real app with Rasa down: app commands are answered, other messages wait."""
    app = create_app(make_settings(app_db, f"http://127.0.0.1:{free_port()}"))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


async def _said(client: TestClient, sender: str, text: str) -> None:
    """A message the assistant has handled (Rasa is down here: mark it done by hand)."""
    await say(client, sender, text)
    async with client.app[SESSIONMAKER]() as s, s.begin():
        await s.execute(
            update(InboundMessage)
            .where(InboundMessage.status == InboundStatus.PENDING)
            .values(status=InboundStatus.DONE)
        )


async def _file_case(client: TestClient, sender: str, **fields: object) -> Case:
    settings = client.app[SETTINGS]
    missions = Missions.load(settings.content.missions_file)
    async with client.app[SESSIONMAKER]() as s, s.begin():
        contact = await messages.get_contact(s, "webchat", sender)
        assert contact is not None
        return await create_case(
            s, conversation_id=contact.public_id, mission=missions.default, **fields
        )


async def test_my_data_lists_what_is_stored_without_free_text(chat_down: TestClient) -> None:
    sender = "dataku-worker"
    await _said(chat_down, sender, "majikan saya Pak Budi di Jalan Melati 5 tidak bayar gaji")
    case = await _file_case(
        chat_down,
        sender,
        category="unpaid_wages",
        country="MY",
        description="Pak Budi tidak bayar gaji",
        phone="+60 12-345 6789",
        consent_version="consent-v1-2026-11",
    )
    urgent = await _file_case(chat_down, sender, category="emergency", priority="urgent")
    [reply] = await say(chat_down, sender, "/dataku")
    text = reply["text"]
    assert "Data Anda yang tersimpan" in text
    assert "Web chat" in text
    assert case.reference in text and urgent.reference in text
    assert "Gaji tidak dibayar" in text  # the category in the worker's language
    assert "2 pesan dari Anda" in text  # the first message and /dataku itself
    assert "consent-v1-2026-11" in text
    assert "keadaan darurat" in text  # the emergency case was kept without consent
    assert mask_phone("+60 12-345 6789") in text and "345 6789" not in text
    assert "Budi" not in text and "Melati" not in text  # no free text is sent back
    # English, by the alias, after choosing English.
    await say(chat_down, sender, '/choose_language{"language": "en"}')
    [reply] = await say(chat_down, sender, "/mydata")
    assert "Your data stored by this service" in reply["text"]
    assert "Wages not paid" in reply["text"] and "English" in reply["text"]


async def test_my_data_of_a_new_worker(chat_down: TestClient) -> None:
    [reply] = await say(chat_down, "fresh-worker", "/data")
    assert "Laporan: tidak ada" in reply["text"]


async def test_phrases_for_channels_without_slash_commands() -> None:
    replies = Replies({"delete_confirm": {"id": "confirm?"}, "delete_yes": {"id": "y"},
                       "delete_no": {"id": "n"}})  # fmt: skip
    supported = ("id", "en")
    for text in ("hapus data saya", "Hapus data saya!", "  HAPUS   DATA  ", "delete my data"):
        command = app_command(text, "id", replies, supported)
        assert command is not None and command.text == "confirm?", text
    for text in ("data saya", "Dataku?", "my data", "/dataku@pmi_bot"):
        command = app_command(text, "id", replies, supported)
        assert command is not None and command.my_data, text
    # Only the whole message counts: words inside a sentence go to the assistant.
    for text in ("hapus", "tolong hapus data saya dari agen", "data saya dicuri agen"):
        assert app_command(text, "id", replies, supported) is None, text


# --- masking ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "hidden", "kept"),
    [
        ("nomor saya 0812-3456-7890 ya", "3456-7890", "nomor saya 0"),
        ("call +62 812 9007 0027", "9007", "+62"),
        ("paspor A1234567", "1234567", "paspor A"),
        ("paspor saya B 7654321", "7654321", "paspor saya B"),
        ("email siti.aminah@example.com", "siti.aminah", "@example.com"),
        ("at 2026-11-28 06:14:07 case PMI-7KQ2XR id=12345", "", "2026-11-28 06:14:07"),
        ("from 192.168.100.200:8080 in 0.123456789s", "", "192.168.100.200:8080 in 0.12345"),
    ],
)
def test_mask_text(text: str, hidden: str, kept: str) -> None:
    masked = mask_text(text)
    assert kept in masked
    if hidden:
        assert hidden not in masked
    else:
        assert masked == text


@given(
    prefix=st.sampled_from(["", "+62 ", "+60", "0", "+886-"]),
    groups=st.lists(st.integers(100, 9999), min_size=2, max_size=4),
    sep=st.sampled_from(["", " ", "-"]),
)
def test_masked_phone_numbers_lose_their_digits(prefix: str, groups: list[int], sep: str) -> None:
    number = prefix + sep.join(str(g) for g in groups)
    digits = re.sub(r"\D", "", number)
    masked = mask_text(f"hubungi {number} sekarang")
    remaining = re.sub(r"\D", "", masked)
    if 8 <= len(digits) <= 15:  # the longest international number has 15 digits
        assert len(remaining) <= 4, (number, masked)  # country code and the last two
    assert mask_phone(number).endswith(digits[-2:])


@pytest.fixture
def masked_logging() -> Iterator[list[str]]:
    factory = logging.getLogRecordFactory()
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Collect()
    logger = logging.getLogger("pmi.test_masking")
    logger.addHandler(handler)
    install_masking()
    install_masking()  # idempotent
    yield lines
    logger.removeHandler(handler)
    logging.setLogRecordFactory(factory)


def test_logs_are_masked_in_messages_arguments_and_tracebacks(masked_logging: list[str]) -> None:
    logger = logging.getLogger("pmi.test_masking")
    logger.warning("worker %s wrote from %s", "siti@example.com", "+62 812 9007 0027")
    try:
        raise ValueError("bad phone 081234567890 for passport X1234567")
    except ValueError:
        logger.exception("contact_id=%s failed", 42)
    text = "\n".join(masked_logging)
    assert "contact_id=42" in text and "ValueError" in text
    for secret in ("siti@", "9007 0027", "34567890", "1234567"):
        assert secret not in text, secret


async def test_staff_alerts_carry_no_personal_data(chat_down: TestClient) -> None:
    sender = "alert-worker"
    await _said(chat_down, sender, "halo")
    case = await _file_case(
        chat_down,
        sender,
        category="passport_held",
        country="SA",
        city="Riyadh",
        employer="Abdullah Trading",
        description="majikan menyimpan dokumen saya",
        location="Jalan Olaya 12",
        phone="+966 55 123 4567",
    )
    settings = chat_down.app[SETTINGS]
    content = settings.content
    service = AlertService(
        settings,
        chat_down.app[SESSIONMAKER],
        Missions.load(content.missions_file),
        CaseLabels.load(content.case_labels_file),
        Replies.load(content.replies_file),
        None,
    )
    async with chat_down.app[SESSIONMAKER]() as s:
        [alert] = (await s.scalars(select(StaffAlert).where(StaffAlert.case_id == case.id))).all()
    text = service.render(alert, case)
    assert case.reference in text
    for personal in ("Riyadh", "Abdullah", "menyimpan", "Olaya", "123 4567", sender):
        assert personal not in text
