"""Per-contact locks: in-process on SQLite, across processes on PostgreSQL.

The PostgreSQL tests use two engines on one private schema, as two app processes would,
and drive two real relays against a local fake of Rasa's relay channel that records
overlapping turns of one conversation.
"""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import select, text

from bot.inbox import Inbox, Incoming
from bot.rasa_client import RasaClient
from bot.relay import Relay
from devtools.local_server import serve
from pmi.db import create_engine, create_sessionmaker
from pmi.knowledge import Replies
from pmi.locks import ContactLocks
from pmi.models import InboundMessage, InboundStatus
from tests.pgschema import Schema, private_schema
from tests.support import POSTGRES_URL, make_settings, postgres_reachable

postgres = pytest.mark.skipif(not postgres_reachable(), reason="PostgreSQL not reachable")


async def test_in_process_lock_serialises_and_forgets_idle_contacts() -> None:
    locks = ContactLocks()
    assert not locks.cross_process
    inside: list[int] = []
    overlaps = 0

    async def work(contact_id: int) -> None:
        nonlocal overlaps
        async with locks[contact_id]:
            overlaps += inside.count(contact_id)
            inside.append(contact_id)
            await asyncio.sleep(0.01)
            inside.remove(contact_id)

    await asyncio.gather(*(work(i % 3) for i in range(30)))
    assert overlaps == 0
    assert len(locks) == 0  # no entry left behind once nobody holds or waits


async def test_sqlite_sessions_get_in_process_locks(app_db: str) -> None:
    engine = create_engine(app_db)
    try:
        assert not ContactLocks.for_sessions(create_sessionmaker(engine)).cross_process
        with pytest.raises(ValueError):
            ContactLocks(engine)
    finally:
        await engine.dispose()


@pytest.fixture
async def schema() -> AsyncIterator[Schema]:
    async with private_schema("pmi_locks") as found:
        yield found


async def _enters_within(locks: ContactLocks, contact_id: int, seconds: float) -> bool:
    async def enter() -> None:
        async with locks[contact_id]:
            pass

    try:
        await asyncio.wait_for(enter(), seconds)
    except TimeoutError:
        return False
    return True


@postgres
async def test_advisory_lock_excludes_another_process(schema: Schema) -> None:
    one, two = schema.engine(), schema.engine()
    try:
        a, b = ContactLocks(one), ContactLocks(two)
        assert ContactLocks.for_sessions(create_sessionmaker(one)).cross_process
        async with a[7]:
            assert not await _enters_within(b, 7, 0.3)  # held by the other "process"
            assert await _enters_within(b, 8, 2)  # another contact is free
        assert await _enters_within(b, 7, 2)
        assert len(a) == len(b) == 0
    finally:
        await one.dispose()
        await two.dispose()


@postgres
async def test_advisory_lock_keys_are_per_schema(schema: Schema) -> None:
    """Another schema (another deployment or test run) on the same database is not blocked."""
    one, other = schema.engine(), create_engine(POSTGRES_URL)
    try:
        async with ContactLocks(one)[7]:
            assert await _enters_within(ContactLocks(other), 7, 2)
    finally:
        await one.dispose()
        await other.dispose()


@postgres
async def test_lost_connection_frees_the_lock(schema: Schema) -> None:
    """A process that dies drops its connection, and PostgreSQL the lock with it."""
    one, two = schema.engine(), schema.engine()
    try:
        a, b = ContactLocks(one), ContactLocks(two)
        async with a[11]:
            async with two.begin() as conn:
                killed = await conn.scalar(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_locks"
                        " WHERE locktype = 'advisory' AND objid = 11 AND granted"
                        " AND pid <> pg_backend_pid()"
                    )
                )
            assert killed == 1
            assert await _enters_within(b, 11, 2)
        # The holder's unlock failed quietly; its broken connection was not reused.
        assert await _enters_within(a, 11, 2)
    finally:
        await one.dispose()
        await two.dispose()


@postgres
async def test_cancelled_holder_unlocks(schema: Schema) -> None:
    one, two = schema.engine(), schema.engine()
    try:
        a, b = ContactLocks(one), ContactLocks(two)
        entered = asyncio.Event()

        async def hold_forever() -> None:
            async with a[5]:
                entered.set()
                await asyncio.sleep(3600)

        task = asyncio.create_task(hold_forever())
        await entered.wait()
        assert not await _enters_within(b, 5, 0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await _enters_within(b, 5, 2)
    finally:
        await one.dispose()
        await two.dispose()


@postgres
async def test_holders_are_bounded_so_the_pool_never_deadlocks(schema: Schema) -> None:
    """More contacts than pool connections at once: each holder still gets a session."""
    engine = schema.engine(pool_size=2, max_overflow=1, pool_timeout=5)
    try:
        locks, sessions = ContactLocks(engine, max_holders=2), create_sessionmaker(engine)

        async def turn(contact_id: int) -> None:
            async with locks[contact_id], sessions() as s:
                await s.execute(text("SELECT pg_sleep(0.02)"))

        await asyncio.wait_for(asyncio.gather(*(turn(i) for i in range(1, 13))), 20)
    finally:
        await engine.dispose()


@dataclass
class FakeRasa:
    """Rasa's relay channel, answering an echo; records overlapping turns per sender."""

    port: int = 0
    seen: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    busy: set[str] = field(default_factory=set)
    overlaps: int = 0
    _runner: web.AppRunner | None = None

    async def _turn(self, request: web.Request) -> web.Response:
        body = await request.json()
        sender = body["sender"]
        if sender in self.busy:
            self.overlaps += 1
        self.busy.add(sender)
        try:
            await asyncio.sleep(random.uniform(0, 0.02))
            self.seen[sender].append(body["message"])
        finally:
            self.busy.discard(sender)
        reply = {"text": "echo " + body["message"]}
        if request.path.startswith("/webhooks/rest/"):  # Rasa's plain REST channel
            return web.json_response([reply])
        return web.json_response({"replies": [reply], "intent": "greet", "confidence": 1.0})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/webhooks/relay/webhook", self._turn)
        app.router.add_post("/webhooks/rest/webhook", self._turn)
        self._runner, self.port = await serve(app)

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()


@postgres
async def test_two_relays_process_each_contact_once_in_order(schema: Schema) -> None:
    """Two "processes" take one contact's messages at random: one turn at a time, in order."""
    rasa = FakeRasa()
    await rasa.start()
    settings = make_settings(schema.url, f"http://127.0.0.1:{rasa.port}")
    replies = Replies.load(settings.content.replies_file)
    engines = [schema.engine(), schema.engine()]
    http = aiohttp.ClientSession()
    try:
        inboxes = [
            Inbox(
                create_sessionmaker(e),
                Relay(
                    settings,
                    create_sessionmaker(e),
                    RasaClient(http, settings.rasa.url, 10),
                    replies,
                ),
            )
            for e in engines
        ]
        contacts, per_contact = 6, 12
        rng = random.Random(9)

        async def worker(user: int) -> None:
            for n in range(per_contact):
                inbox = rng.choice(inboxes)
                incoming = Incoming("test", f"u{user}", f"{user}-{n}", f"pesan {n}")
                received = await inbox.accept(incoming)  # processed in the background
                assert received.inbound_id is not None
                await asyncio.sleep(rng.uniform(0, 0.01))

        await asyncio.gather(*(worker(u) for u in range(contacts)))
        for inbox in inboxes:
            await inbox.drain()

        async with create_sessionmaker(engines[0])() as s:
            statuses = (await s.scalars(select(InboundMessage.status))).all()
        assert len(statuses) == contacts * per_contact
        assert set(statuses) == {InboundStatus.DONE}  # nothing left for the retry loop
        assert rasa.overlaps == 0
        assert len(rasa.seen) == contacts
        for texts in rasa.seen.values():
            assert texts == [f"pesan {n}" for n in range(per_contact)]  # once each, in order
    finally:
        await http.close()
        for e in engines:
            await e.dispose()
        await rasa.stop()
