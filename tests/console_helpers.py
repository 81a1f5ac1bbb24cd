"""Helpers shared by the console's HTTP tests: an app with users, login, CSRF tokens."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp.test_utils import TestClient, TestServer

from bot.app import create_app
from bot.keys import SESSIONMAKER
from pmi import cases, messages, staff
from pmi.missions import Missions
from pmi.models import Case
from pmi.settings import load_settings
from tests.conftest import free_port, make_settings

PASSWORD = "a long enough passphrase"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@asynccontextmanager
async def console_client(database_url: str) -> AsyncIterator[TestClient]:
    """The app on 127.0.0.1 with an operator, a Kuala Lumpur mission user and an admin."""
    app = create_app(make_settings(database_url, f"http://127.0.0.1:{free_port()}"))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        async with client.app[SESSIONMAKER]() as s, s.begin():
            await staff.create_user(s, "operator1", PASSWORD, "operator")
            await staff.create_user(s, "kl_staff", PASSWORD, "mission", "KBRI-KUALA-LUMPUR")
            await staff.create_user(s, "admin1", PASSWORD, "admin")
        yield client


async def login(client: TestClient, username: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    page = await client.get("/console/login")
    token = CSRF.search(await page.text()).group(1)  # type: ignore[union-attr]
    return await client.post(
        "/console/login",
        data={"username": username, "password": password, "csrf": token},
        allow_redirects=False,
    )


async def csrf_of(client: TestClient, path: str) -> str:
    page = await client.get(path)
    assert page.status == 200, await page.text()
    return CSRF.search(await page.text()).group(1)  # type: ignore[union-attr]


async def new_case(client: TestClient, country: str, city: str | None = None, **kw) -> Case:  # type: ignore[no-untyped-def]
    """A case filed by a web chat worker of `country`/`city` (extra fields in `kw`)."""
    missions = Missions.load(load_settings().content.missions_file)
    kw.setdefault("category", "unpaid_wages")
    async with client.app[SESSIONMAKER]() as s, s.begin():
        contact = await messages.get_or_create_contact(s, "webchat", f"w-{country}-{city}")
        return await cases.create_case(
            s,
            conversation_id=contact.public_id,
            mission=missions.route(country, city),
            country=country,
            city=city,
            language="en",
            **kw,
        )
