"""CSV export of cases: filters, mission isolation, personal data only when allowed and asked."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.keys import SESSIONMAKER
from pmi import case_export
from pmi.models import AuditEntry, Priority
from tests.console_helpers import console_client, login, new_case


@pytest.fixture
async def client(app_db: str) -> AsyncIterator[TestClient]:
    async with console_client(app_db) as client:
        yield client


async def _csv(client: TestClient, **params: str) -> list[dict[str, str]]:
    resp = await client.get("/console/cases.csv", params=params)
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "text/csv" and resp.charset == "utf-8"
    assert resp.headers["Content-Disposition"].startswith('attachment; filename="cases_')
    assert resp.headers["Cache-Control"] == "no-store"
    body = (await resp.read()).decode("utf-8")
    assert body.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(body[1:])))


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+62 812", "'+62 812"),
        ("-1+1", "'-1+1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("gaji = 0", "gaji = 0"),
        (None, ""),
    ],
)
def test_cells_that_start_a_formula_are_defused(value: str | None, cell: str) -> None:
    assert case_export.safe_cell(value) == cell


async def test_export_leaves_personal_data_out_by_default(client) -> None:
    kl = await new_case(
        client,
        "MY",
        "Kuala Lumpur",
        employer="=cmd|' /C calc'!A0",
        description="majikan tidak bayar",
        phone="+60123456789",
    )
    tw = await new_case(client, "TW", priority=Priority.URGENT, category="passport_held")
    await login(client, "operator1")
    rows = await _csv(client)
    assert {r["reference"] for r in rows} == {kl.reference, tw.reference}
    assert list(rows[0]) == list(case_export.BASE_COLUMNS)
    assert rows[0]["reference"] == tw.reference  # urgent and unacknowledged first, as the inbox
    # Operators may not add personal data: refused, and the attempt is logged.
    assert (await client.get("/console/cases.csv", params={"personal": "1"})).status == 403
    # The inbox's filters apply.
    only = await _csv(client, category="passport_held")
    assert [r["reference"] for r in only] == [tw.reference]
    assert [r["reference"] for r in await _csv(client, country="MY")] == [kl.reference]
    assert await _csv(client, **{"from": "2999-01-01"}) == []
    page = await (await client.get("/console/?category=passport_held")).text()
    assert 'action="/console/cases.csv"' in page and 'name="personal"' not in page
    assert 'name="category" value="passport_held"' in page


async def test_mission_staff_export_their_cases_with_personal_data_on_request(client) -> None:
    kl = await new_case(
        client, "MY", "Kuala Lumpur", employer="=cmd|' /C calc'!A0", phone="+60123456789"
    )
    await new_case(client, "TW", employer="Taipei employer")
    await login(client, "kl_staff")
    rows = await _csv(client)
    assert [r["reference"] for r in rows] == [kl.reference] and "employer" not in rows[0]
    # Another mission's filter gives nothing more: the scope always applies.
    assert [r["reference"] for r in await _csv(client, mission="KDEI-TAIPEI")] == []
    [row] = await _csv(client, personal="1")
    assert row["employer"] == "'=cmd|' /C calc'!A0" and row["phone"] == "'+60123456789"
    assert row["city"] == "Kuala Lumpur"
    page = await (await client.get("/console/")).text()
    assert 'name="personal"' in page
    async with client.app[SESSIONMAKER]() as s:
        entries = (
            await s.scalars(
                select(AuditEntry)
                .where(AuditEntry.action.in_(("export_cases", "denied")))
                .order_by(AuditEntry.id)
            )
        ).all()
    assert [(e.action, e.detail["personal_data"], e.detail["rows"]) for e in entries] == [
        ("export_cases", False, 1),
        ("export_cases", False, 0),
        ("export_cases", True, 1),
    ]
    assert entries[1].detail["filters"] == {"mission_code": "KDEI-TAIPEI"}


async def test_admin_may_export_personal_data_and_the_refusal_is_audited(client) -> None:
    await new_case(client, "TW", employer="Taipei employer")
    await login(client, "operator1")
    assert (await client.get("/console/cases.csv?personal=1")).status == 403
    await login(client, "admin1")
    [row] = await _csv(client, personal="1")
    assert row["employer"] == "Taipei employer"
    async with client.app[SESSIONMAKER]() as s:
        denied = await s.scalar(select(AuditEntry).where(AuditEntry.action == "denied"))
    assert denied is not None and denied.target == "export"
    assert denied.detail["personal_data"] is True
    assert (await client.get("/console/cases.csv?personal=1", allow_redirects=False)).status == 200
