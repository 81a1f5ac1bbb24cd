"""Intent filters in the transcript search, operators' intent corrections and their export."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import yaml
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.keys import SESSIONMAKER
from pmi import corrections, messages, privacy, transcripts
from pmi.models import AuditEntry, InboundMessage, IntentCorrection
from pmi.settings import load_settings
from scripts import export_corrections
from tests.console_helpers import console_client, csrf_of, login

# An old and a new passport format, a Malaysian and an Indonesian phone number, an e-mail.
PERSONAL = "paspor A1234567 dan B 7654321, hp +60 12-345 6789 / 0812 3456 7890, siti@mail.co.id"


@pytest.fixture
async def client(app_db: str) -> AsyncIterator[TestClient]:
    async with console_client(app_db) as client:
        yield client


def test_domain_intents_are_read_from_the_domain_files() -> None:
    intents = corrections.load_intents(load_settings().content.domain_dir)
    assert len(intents) == len(set(intents)) > 20
    for intent in ("greet", "report_emergency", "ask_placement_cost", "out_of_scope"):
        assert intent in intents
    assert corrections.FALLBACK_INTENT not in intents  # not a domain intent: nothing to learn


def test_mask_hides_phone_passport_and_email() -> None:
    masked = corrections.mask(PERSONAL)
    for secret in ("1234567", "7654321", "345 6789", "3456 7890", "siti@"):
        assert secret not in masked
    assert masked.count("PASPOR") == 2 and masked.count("NOMOR") == 2 and "EMAIL" in masked
    assert corrections.mask("gaji saya 3 bulan belum dibayar") == "gaji saya 3 bulan belum dibayar"


async def _messages(s, rows: list[tuple[str, str, str | None, float | None]]) -> list:  # type: ignore[no-untyped-def]
    contact = await messages.get_or_create_contact(s, "telegram", "intent-worker")
    stored = []
    for i, (text, language, intent, confidence) in enumerate(rows):
        m = await messages.store_inbound(s, contact, "telegram", f"i{i}", text)
        assert m is not None
        m.language, m.intent, m.confidence = language, intent, confidence
        stored.append(m)
    await s.flush()
    return stored


async def test_search_by_intent_and_low_confidence(sessions) -> None:
    async with sessions() as s, s.begin():
        await _messages(
            s,
            [
                ("berapa biaya ke taiwan", "id", "ask_placement_cost", 0.93),
                ("biaya agen mahal sekali", "id", "ask_placement_cost", 0.41),
                ("asdf qwer", "id", "nlu_fallback", 0.31),
                ("halo", "id", "greet", 0.99),
                ("belum diproses", "id", None, None),
            ],
        )
        by_intent = await transcripts.search(
            s, transcripts.SearchFilters(intent="ask_placement_cost")
        )
        assert sorted(m.text for m, _ in by_intent) == [
            "berapa biaya ke taiwan",
            "biaya agen mahal sekali",
        ]
        unsure = await transcripts.search(s, transcripts.SearchFilters(low_confidence_below=0.5))
        assert sorted(m.text for m, _ in unsure) == ["asdf qwer", "biaya agen mahal sekali"]
        both = transcripts.SearchFilters(intent="ask_placement_cost", low_confidence_below=0.5)
        assert [m.text for m, _ in await transcripts.search(s, both)] == ["biaya agen mahal sekali"]
        fallback = await transcripts.search(s, transcripts.SearchFilters(intent="nlu_fallback"))
        assert [m.text for m, _ in fallback] == ["asdf qwer"]
        assert not transcripts.SearchFilters().any()


async def test_console_search_filters_by_intent_and_confidence(client) -> None:
    async with client.app[SESSIONMAKER]() as s, s.begin():
        await _messages(
            s,
            [
                ("berapa biaya ke taiwan", "id", "ask_placement_cost", 0.93),
                ("uang saya hilang di agen", "id", "ask_placement_cost", 0.42),
                ("asdf qwer", "id", "nlu_fallback", 0.31),
            ],
        )
    await login(client, "operator1")
    page = await (await client.get("/console/search?intent=ask_placement_cost")).text()
    assert "berapa biaya ke taiwan" in page and "uang saya hilang" in page and "asdf" not in page
    page = await (await client.get("/console/search?low=1")).text()
    assert "uang saya hilang" in page and "asdf qwer" in page and "berapa biaya" not in page
    assert "(0.42)" in page
    # An intent that is not in the domain is ignored, not searched for.
    page = await (await client.get("/console/search?intent=bogus&q=asdf")).text()
    assert "asdf qwer" in page
    await login(client, "kl_staff")
    assert (await client.get("/console/search?low=1")).status == 404


async def test_operator_marks_an_intent_and_the_export_is_rasa_nlu(
    client, app_db, tmp_path, monkeypatch
) -> None:
    async with client.app[SESSIONMAKER]() as s, s.begin():
        first, second, _ = await _messages(
            s,
            [
                (f"tolong {PERSONAL}", "id", "nlu_fallback", 0.2),
                ("berapa potongan gaji yang boleh", "id", "ask_worker_rights", 0.45),
                ("halo", "id", "greet", 0.99),
            ],
        )
        contact_id = first.contact_id
        public_id = (await messages.get_contact(s, "telegram", "intent-worker")).public_id  # type: ignore[union-attr]
    path = f"/console/conversations/{public_id}"
    await login(client, "operator1")
    token = await csrf_of(client, path)
    mark = f"{path}/messages/{first.id}/intent"
    # CSRF, validation, and a message of another conversation.
    assert (await client.post(mark, data={"intent": "report_emergency"})).status == 403
    bad = await client.post(mark, data={"csrf": token, "intent": "nlu_fallback"})
    assert bad.status == 400
    elsewhere = f"/console/conversations/{'0' * 32}/messages/{first.id}/intent"
    assert (await client.post(elsewhere, data={"csrf": token, "intent": "greet"})).status == 404
    ok = await client.post(mark, data={"csrf": token, "intent": "report_emergency"})
    assert ok.status == 200 and "Koreksi tersimpan" in await ok.text()
    second_mark = f"{path}/messages/{second.id}/intent"
    await client.post(second_mark, data={"csrf": token, "intent": "ask_illegal_fees"})
    # Marking again replaces the first verdict.
    await client.post(second_mark, data={"csrf": token, "intent": "ask_illegal_fees"})
    await login(client, "kl_staff")
    mission_token = await csrf_of(client, "/console/")
    denied = await client.post(mark, data={"csrf": mission_token, "intent": "greet"})
    assert denied.status == 404
    async with client.app[SESSIONMAKER]() as s:
        rows = (await s.scalars(select(IntentCorrection).order_by(IntentCorrection.id))).all()
        audit = (
            await s.scalars(select(AuditEntry).where(AuditEntry.action == "correct_intent"))
        ).all()
    assert [(r.intent, r.predicted_intent) for r in rows] == [
        ("report_emergency", "nlu_fallback"),
        ("ask_illegal_fees", "ask_worker_rights"),
    ]
    assert "1234567" not in rows[0].text and "PASPOR" in rows[0].text
    assert len(audit) == 3 and audit[0].target == public_id
    assert audit[0].detail == {
        "message": first.id,
        "intent": "report_emergency",
        "was": "nlu_fallback",
    }

    monkeypatch.setenv("DATABASE_URL", app_db)
    out, count = await export_corrections.export(tmp_path)
    assert count == 2 and out.parent == tmp_path and out.name.startswith("nlu_corrections_")
    text = out.read_text(encoding="utf-8")
    assert "1234567" not in text and "siti@" not in text and "halo" not in text
    data = yaml.safe_load(text)
    assert data["version"] == "3.1" and set(data) == {"version", "nlu"}
    assert [e["intent"] for e in data["nlu"]] == ["ask_illegal_fees", "report_emergency"]
    for entry in data["nlu"]:
        assert set(entry) == {"intent", "examples"}
        lines = entry["examples"].splitlines()
        assert lines and all(line.startswith("- ") for line in lines)
    assert data["nlu"][0]["examples"] == "- berapa potongan gaji yang boleh\n"
    assert data["nlu"][1]["examples"].startswith("- tolong paspor PASPOR")

    # The worker's erasure removes the corrections with the messages.
    async with client.app[SESSIONMAKER]() as s, s.begin():
        contact = await messages.get_contact(s, "telegram", "intent-worker")
        assert contact is not None and contact.id == contact_id
        await privacy.forget_contact(s, contact)
    async with client.app[SESSIONMAKER]() as s:
        assert (await s.scalars(select(IntentCorrection))).all() == []
        assert (await s.scalars(select(InboundMessage))).all() == []


def test_nlu_yaml_dedupes_and_keeps_one_line_per_example() -> None:
    rows = [
        IntentCorrection(intent="greet", text="halo\nkak"),
        IntentCorrection(intent="greet", text="halo  kak"),
        IntentCorrection(intent="thank", text="makasih: banyak # ya"),
    ]
    data = yaml.safe_load(corrections.to_nlu_yaml(rows, datetime(2026, 11, 28, tzinfo=UTC)))
    assert data["nlu"] == [
        {"intent": "greet", "examples": "- halo kak\n"},
        {"intent": "thank", "examples": "- makasih: banyak # ya\n"},
    ]
