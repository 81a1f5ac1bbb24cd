"""Workers' files in the console: shown with the transcript, only to staff who may see them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.app import create_app
from bot.keys import MEDIA_STORE, SESSIONMAKER
from devtools.net import free_port
from pmi import media, messages, staff
from pmi.models import AuditEntry, Case, Media
from tests.console_helpers import PASSWORD, enable_totp, login, new_case
from tests.support import make_settings

PHOTO = b"\x89PNG\r\n\x1a\nfake-png"


@pytest.fixture
async def client(app_db: str, tmp_path) -> AsyncIterator[TestClient]:
    settings = make_settings(app_db, f"http://127.0.0.1:{free_port()}")
    settings.media.dir = tmp_path / "media"
    async with TestClient(TestServer(create_app(settings), host="127.0.0.1")) as client:
        async with client.app[SESSIONMAKER]() as s, s.begin():
            await staff.create_user(s, "operator1", PASSWORD, "operator")
            await staff.create_user(s, "kl_staff", PASSWORD, "mission", "KBRI-KUALA-LUMPUR")
        await enable_totp(client.app, "kl_staff")  # mission staff log in with a TOTP code
        yield client


async def _photo_of_case_contact(client, case: Case) -> Media:  # type: ignore[no-untyped-def]
    async with client.app[SESSIONMAKER]() as s, s.begin():
        contact = await messages.get_contact(s, "webchat", f"w-{case.country}-{case.city}")
        assert contact is not None
        inbound = await messages.store_inbound(s, contact, "webchat", "photo-1", "")
        assert inbound is not None
        record = await media.record(
            s, contact.id, inbound.id, media.MediaRef("photo", "file-1", "image/png")
        )
        record.storage_key, record.sha256 = client.app[MEDIA_STORE].put(PHOTO)
        return record


async def test_a_photo_is_attached_to_the_open_case_and_shown_on_its_page(client) -> None:
    case = await new_case(client, "MY", "Kuala Lumpur")
    photo = await _photo_of_case_contact(client, case)
    assert photo.case_id == case.id
    assert (await login(client, "kl_staff")).status in (302, 303)
    page = await client.get(f"/console/cases/{case.reference}")
    assert f'src="/console/media/{photo.id}"' in await page.text()
    resp = await client.get(f"/console/media/{photo.id}")
    assert resp.status == 200 and await resp.read() == PHOTO
    assert resp.headers["Content-Type"] == "image/png"
    assert "no-store" in resp.headers["Cache-Control"]
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


async def test_other_missions_and_strangers_cannot_open_a_file(client) -> None:
    case = await new_case(client, "TW", "Taipei")
    photo = await _photo_of_case_contact(client, case)
    anonymous = await client.get(f"/console/media/{photo.id}", allow_redirects=False)
    assert anonymous.status in (302, 303, 401)
    await login(client, "kl_staff")  # Kuala Lumpur staff, a Taipei case
    assert (await client.get(f"/console/media/{photo.id}")).status == 404
    assert (await client.get("/console/media/999999")).status == 404
    async with client.app[SESSIONMAKER]() as s:
        denied = (await s.scalars(select(AuditEntry).where(AuditEntry.action == "denied"))).all()
    assert any(e.target == f"media:{photo.id}" for e in denied)
    client.session.cookie_jar.clear()
    await login(client, "operator1")
    assert (await client.get(f"/console/media/{photo.id}")).status == 200


async def test_a_document_is_served_as_a_download(client) -> None:
    case = await new_case(client, "MY", "Kuala Lumpur")
    async with client.app[SESSIONMAKER]() as s, s.begin():
        contact = await messages.get_contact(s, "webchat", "w-MY-Kuala Lumpur")
        assert contact is not None
        inbound = await messages.store_inbound(s, contact, "webchat", "doc-1", "")
        assert inbound is not None
        doc = await media.record(
            s, contact.id, inbound.id, media.MediaRef("document", "f", "text/html")
        )
        doc.storage_key, doc.sha256 = client.app[MEDIA_STORE].put(b"<script>alert(1)</script>")
    assert case.id
    await login(client, "operator1")
    resp = await client.get(f"/console/media/{doc.id}")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/octet-stream"
    assert resp.headers["Content-Disposition"].startswith("attachment")
