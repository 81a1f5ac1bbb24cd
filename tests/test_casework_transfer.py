"""Case work: transfer to another mission and referral to a domestic authority, on both
databases and through the console (CSRF, the old mission's 404, the worker's notice held
when her chat is not safe), and the outcome stored as a column when a case is closed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.console.context import CLOCK
from bot.keys import SESSIONMAKER
from pmi import cases, casework, messages, referrals, safety, staff
from pmi.canned import CannedReplies
from pmi.missions import Missions
from pmi.models import (
    AuditEntry,
    Case,
    CaseEvent,
    Contact,
    OutboundMessage,
    OutboundStatus,
    StaffAlert,
)
from pmi.outcomes import Outcomes, close_case
from pmi.settings import load_settings
from tests.console_helpers import PASSWORD, console_client, csrf_of, login, new_case

KL, JB = "KBRI-KUALA-LUMPUR", "KJRI-JOHOR-BAHRU"
CONTENT = load_settings().content


@pytest.fixture(scope="module")
def missions() -> Missions:
    return Missions.load(CONTENT.missions_file)


@pytest.fixture(scope="module")
def bodies() -> referrals.ReferralBodies:
    return referrals.ReferralBodies.load(CONTENT.referral_bodies_file)


async def _case(s, missions: Missions, user_id: str) -> tuple[Case, Contact]:  # type: ignore[no-untyped-def]
    contact = await messages.get_or_create_contact(s, "webchat", user_id)
    case = await cases.create_case(
        s,
        conversation_id=contact.public_id,
        category="unpaid_wages",
        mission=missions.route("MY", "Kuala Lumpur"),
        country="MY",
        city="Kuala Lumpur",
    )
    return case, contact


async def _outbound(s, contact: Contact) -> list[OutboundMessage]:  # type: ignore[no-untyped-def]
    query = select(OutboundMessage).where(OutboundMessage.contact_id == contact.id)
    return list((await s.scalars(query.order_by(OutboundMessage.id))).all())


# --- storage (SQLite and PostgreSQL) ---------------------------------------------------


async def test_transfer_moves_the_case_alerts_the_new_mission_and_tells_the_worker(
    sessions, missions
) -> None:
    async with sessions() as s, s.begin():
        case, contact = await _case(s, missions, "t1")
        officer = await staff.create_user(s, "kl_t1", PASSWORD, "mission", KL)
        await casework.assign(s, case, officer, officer)
        old = await casework.transfer(
            s, case, missions.by_code[JB], "pindah kerja ke Johor Bahru", officer, "moved"
        )
        await s.flush()
        event = await s.scalar(
            select(CaseEvent).where(CaseEvent.case_id == case.id, CaseEvent.kind == "transfer")
        )
        alert = await s.scalar(
            select(StaffAlert).where(StaffAlert.case_id == case.id, StaffAlert.reason == "rerouted")
        )
        audit = await s.scalar(select(AuditEntry).where(AuditEntry.action == "case_transfer"))
        sent = await _outbound(s, contact)
    assert old == KL and (case.mission_code, case.owner_id) == (JB, None)
    assert event is not None and event.detail["text"] == "pindah kerja ke Johor Bahru"
    assert alert is not None and (alert.mission_code, alert.reason) == (JB, "rerouted")
    assert audit is not None and audit.detail == {"from": KL, "to": JB, **event.detail}
    assert [(m.text, m.kind, m.status) for m in sent] == [("moved", "case", OutboundStatus.PENDING)]


async def test_the_transfer_notice_is_held_when_the_chat_is_not_safe(sessions, missions) -> None:
    async with sessions() as s, s.begin():
        case, contact = await _case(s, missions, "t2")
        await safety.mark_unsafe(s, contact)
        officer = await staff.create_user(s, "kl_t2", PASSWORD, "mission", KL)
        await casework.transfer(s, case, missions.by_code[JB], "salah kota", officer, "moved")
        await s.flush()
        sent = await _outbound(s, contact)
    assert [m.status for m in sent] == [OutboundStatus.HELD]


async def test_a_transfer_needs_a_reason_another_mission_and_an_open_case(
    sessions, missions
) -> None:
    async with sessions() as s, s.begin():
        case, _ = await _case(s, missions, "t3")
        officer = await staff.create_user(s, "kl_t3", PASSWORD, "mission", KL)
        with pytest.raises(casework.CaseworkError, match="reason"):
            await casework.transfer(s, case, missions.by_code[JB], "  ", officer, None)
        with pytest.raises(casework.CaseworkError, match="already"):
            await casework.transfer(s, case, missions.by_code[KL], "x", officer, None)
        await close_case(
            s, case, Outcomes.load(CONTENT.case_outcomes_file), "settled", "ok", officer
        )
        with pytest.raises(casework.CaseworkError, match="closed"):
            await casework.transfer(s, case, missions.by_code[JB], "x", officer, None)
    assert case.outcome == "settled" and case.mission_code == KL


async def test_referral_sets_referred_a_follow_up_and_tells_the_worker_once(
    sessions, missions, bodies
) -> None:
    due = datetime(2026, 12, 20, 23, 59, tzinfo=UTC)
    bp3mi = referrals.Referral("bp3mi", "Jawa Timur", "", due, "agensi di Malang")
    async with sessions() as s, s.begin():
        case, contact = await _case(s, missions, "r1")
        officer = await staff.create_user(s, "kl_r1", PASSWORD, "mission", KL)
        await referrals.refer(s, case, bodies, bp3mi, officer, "referred")
        numbered = referrals.Referral("bp3mi", "Jawa Timur", "BP3MI-JT/123", due, "")
        await referrals.refer(s, case, bodies, numbered, officer, None)  # the number, later
        await s.flush()
        kinds = (await s.scalars(select(CaseEvent.kind).where(CaseEvent.case_id == case.id))).all()
        sent = await _outbound(s, contact)
    assert (case.status, case.referred_to, case.referral_ref) == (
        "referred",
        "bp3mi:Jawa Timur",
        "BP3MI-JT/123",
    )
    assert (
        case.due_at == due
        and case.next_action == "Cek hasil rujukan ke BP3MI provinsi asal: Jawa Timur"
    )
    assert kinds.count("referral") == 2 and kinds.count("status") == 1
    assert [m.text for m in sent] == ["referred"]


async def test_a_referral_is_refused_without_a_listed_body_or_province(
    sessions, missions, bodies
) -> None:
    due = datetime(2026, 12, 20, tzinfo=UTC)
    async with sessions() as s, s.begin():
        case, _ = await _case(s, missions, "r2")
        officer = await staff.create_user(s, "kl_r2", PASSWORD, "mission", KL)
        for body, province in (("embassy", None), ("bp3mi", None), ("bp3mi", "Atlantis")):
            with pytest.raises(referrals.ReferralError):
                await referrals.refer(
                    s, case, bodies, referrals.Referral(body, province, "", due, ""), officer
                )
        await referrals.refer(
            s, case, bodies, referrals.Referral("police", "Bali", "", due, ""), officer
        )
    assert case.referred_to == "police"  # a province is kept only for a provincial body


# --- the console -----------------------------------------------------------------------


@pytest.fixture
async def client(app_db: str) -> AsyncIterator[TestClient]:
    async with console_client(app_db) as client:
        async with client.app[SESSIONMAKER]() as s, s.begin():
            await staff.create_user(s, "jb_staff", PASSWORD, "mission", JB)
        yield client


async def test_console_transfer_hides_the_case_from_the_old_mission(client) -> None:
    case = await new_case(client, "MY", "Kuala Lumpur")
    await login(client, "kl_staff")
    url = f"/console/cases/{case.reference}"
    token = await csrf_of(client, url)
    form = {"mission": JB, "reason": "Pekerja pindah ke Johor Bahru"}
    assert (await client.post(f"{url}/transfer", data=form)).status == 403  # no CSRF token
    bad = await client.post(f"{url}/transfer", data={**form, "csrf": token, "mission": "X"})
    assert bad.status == 400
    moved = await client.post(
        f"{url}/transfer", data={**form, "csrf": token}, allow_redirects=False
    )
    assert moved.status == 303 and moved.headers["Location"].startswith("/console/?transferred=")
    inbox = await (await client.get(moved.headers["Location"])).text()
    assert f"Kasus {case.reference} sudah dipindahkan" in inbox
    assert (await client.get(url)).status == 404
    await client.post("/console/logout", data={"csrf": await csrf_of(client, "/console/")})
    await login(client, "jb_staff")
    page = await (await client.get(url)).text()
    assert "KBRI-KUALA-LUMPUR → KJRI-JOHOR-BAHRU — Pekerja pindah ke Johor Bahru" in page
    async with client.app[SESSIONMAKER]() as s:
        notice = await s.scalar(select(OutboundMessage.text).where(OutboundMessage.kind == "case"))
    assert notice is not None and case.reference in notice and "Johor Bahru" in notice
    assert notice.startswith("Update on report")  # the worker's language (English)


async def test_console_referral_with_a_follow_up_date(client) -> None:
    case = await new_case(client, "MY", "Kuala Lumpur")
    await login(client, "kl_staff")
    url = f"/console/cases/{case.reference}"
    token = await csrf_of(client, url)
    now = client.app[CLOCK].now()
    past = (now - timedelta(days=2)).strftime("%Y-%m-%d")
    form = {"csrf": token, "body": "kp2mi", "reference": "ADU-77", "note": "P3MI ilegal"}
    late = await client.post(f"{url}/refer", data={**form, "follow_up": past})
    assert late.status == 400
    done = await client.post(f"{url}/refer", data=form, allow_redirects=False)
    assert done.status == 303
    page = await (await client.get(url)).text()
    assert "KP2MI (Kementerian P2MI), no. ADU-77" in page
    async with client.app[SESSIONMAKER]() as s:
        stored = await s.get(Case, case.id)
    assert stored is not None and stored.status == "referred"
    assert stored.due_at is not None
    assert timedelta(days=7) <= stored.due_at - now < timedelta(days=7, minutes=1)


# --- canned replies --------------------------------------------------------------------


def test_every_canned_reply_has_all_languages_and_only_known_placeholders() -> None:
    canned = CannedReplies.load(CONTENT.canned_replies_file)
    for reply in canned.replies.values():
        assert set(reply.texts) == {"id", "en", "ms"}, reply.id
        for text in reply.texts.values():
            rendered = text.replace("{reference}", "R").replace("{mission}", "M")
            assert "{" not in rendered and "}" not in rendered, reply.id
    assert canned.unfilled("tanggal [tanggal], catatan [lihat lampiran]") == ["[tanggal]"]


async def test_a_canned_reply_comes_in_the_worker_s_language_and_needs_its_blanks_filled(
    client,
) -> None:
    case = await new_case(client, "MY", "Kuala Lumpur")  # an English-speaking worker
    await login(client, "kl_staff")
    url = f"/console/cases/{case.reference}"
    page = await (await client.get(f"{url}?canned=received")).text()
    draft = page.split('aria-label="Pesan ke pekerja" placeholder="Pesan ke pekerja">')[1]
    draft = draft.split("</textarea>")[0]
    assert draft.startswith(f"We have received report {case.reference}")
    assert "KBRI Kuala Lumpur" in draft and "[date]" in draft
    token = await csrf_of(client, url)
    refused = await client.post(f"{url}/message", data={"csrf": token, "text": draft})
    assert refused.status == 400 and "[date]" in await refused.text()
    filled = draft.replace("[date]", "5 December")
    sent = await client.post(
        f"{url}/message", data={"csrf": token, "text": filled}, allow_redirects=False
    )
    assert sent.status == 303
    async with client.app[SESSIONMAKER]() as s:
        texts = (await s.scalars(select(OutboundMessage.text))).all()
    assert filled in texts
