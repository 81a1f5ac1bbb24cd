"""The relay (`bot/relay.py`): a contact's pending messages go to Rasa in order, once each;
an outage gets one holding reply and leaves them pending; a handed-off conversation and a
flooding contact do not reach Rasa. Messages come in through `Inbox.accept`, Rasa is a
local fake of its relay channel (the internet edge), the database is real."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.inbox import Inbox, Incoming, Received
from bot.rasa_client import RasaClient
from bot.relay import Relay
from devtools.local_server import LocalServer
from pmi import messages
from pmi.handoff import start_handoff
from pmi.knowledge import Replies
from pmi.models import Case, InboundMessage, InboundStatus, OutboundMessage
from pmi.ratelimit import NOTICE, RateLimiter
from pmi.settings import RateLimitSettings
from tests.support import make_settings

Sessions = async_sessionmaker[AsyncSession]
HOLDING = "holding"  # the reply key and outbound kind of "Rasa is away, your message is kept"


@dataclass
class RelayChannel(LocalServer):
    """Rasa's relay channel: answers "echo <text>", or 503 while `down`; `during` runs
    inside a turn, before the answer (another process at work meanwhile)."""

    down: bool = False
    asked: list[dict[str, Any]] = field(default_factory=list)
    during: Callable[[dict[str, Any]], Awaitable[None]] | None = None
    port: int = 0
    _runner: web.AppRunner | None = None

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/webhooks/relay/webhook", self._turn)

    async def _turn(self, request: web.Request) -> web.Response:
        if self.down:
            return web.Response(status=503)
        body = await request.json()
        self.asked.append(body)
        if self.during is not None:
            await self.during(body)
        reply = {"text": f"echo {body['message']}"}
        return web.json_response({"replies": [reply], "intent": "greet", "confidence": 0.9})

    @property
    def texts(self) -> list[str]:
        return [body["message"] for body in self.asked]


@dataclass
class Desk:
    """An inbox and its relay over the test's sessions, and the fake Rasa behind them."""

    sessions: Sessions
    rasa: RelayChannel
    relay: Relay
    inbox: Inbox
    replies: Replies
    sent: int = 0

    async def say(self, text: str, user: str = "worker-1") -> Received:
        """One message from `user`, stored and processed before this returns."""
        self.sent += 1
        incoming = Incoming("telegram", user, f"m{self.sent}", text, hint="id")
        return await self.inbox.accept(incoming, answer_now=True)

    async def inbound(self, contact_id: int) -> list[InboundMessage]:
        return await self._of(InboundMessage, contact_id)

    async def outbound(self, contact_id: int) -> list[OutboundMessage]:
        return await self._of(OutboundMessage, contact_id)

    async def _of(self, model: Any, contact_id: int) -> list[Any]:
        """The contact's rows of `model`, oldest first."""
        async with self.sessions() as s:
            query = select(model).where(model.contact_id == contact_id).order_by(model.id)
            return list(await s.scalars(query))


def _statuses(rows: list[InboundMessage]) -> list[str]:
    return [row.status for row in rows]


@pytest.fixture
async def rasa() -> AsyncIterator[RelayChannel]:
    fake = RelayChannel()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


async def _desk(
    sessions: Sessions, rasa: RelayChannel, http: aiohttp.ClientSession, **relay: Any
) -> Desk:
    settings = make_settings("sqlite://", f"http://127.0.0.1:{rasa.port}")
    replies = Replies.load(settings.content.replies_file, settings.language.fallbacks)
    client = RasaClient(http, settings.rasa.url, 5)
    made = Relay(settings, sessions, client, replies, **relay)
    return Desk(sessions, rasa, made, Inbox(sessions, made), replies)


@pytest.fixture
async def desk(sessions: Sessions, rasa: RelayChannel) -> AsyncIterator[Desk]:
    async with aiohttp.ClientSession() as http:
        yield await _desk(sessions, rasa, http)


async def test_a_message_gets_rasas_reply_and_is_done(desk: Desk) -> None:
    received = await desk.say("halo min")
    [inbound] = await desk.inbound(received.contact_id)
    [reply] = await desk.outbound(received.contact_id)
    assert (inbound.status, inbound.intent, inbound.confidence) == ("done", "greet", 0.9)
    assert (reply.text, reply.inbound_id, reply.kind) == ("echo halo min", inbound.id, "reply")
    [asked] = desk.rasa.asked
    assert asked["metadata"] == {
        "language": "id",
        "channel": "telegram",
        "message_id": str(inbound.id),
    }


async def test_a_backlog_is_processed_in_order_once_each(desk: Desk) -> None:
    desk.rasa.down = True
    for n in range(4):
        contact_id = (await desk.say(f"pesan {n}")).contact_id
    desk.rasa.down = False
    assert await desk.relay.process(contact_id)
    assert desk.rasa.texts == [f"pesan {n}" for n in range(4)]
    assert set(_statuses(await desk.inbound(contact_id))) == {InboundStatus.DONE}
    texts = [m.text for m in await desk.outbound(contact_id) if m.kind == "reply"]
    assert texts == [f"echo pesan {n}" for n in range(4)]


async def test_an_outage_gets_one_holding_reply_and_the_messages_wait(desk: Desk) -> None:
    desk.rasa.down = True
    first = await desk.say("tolong")
    await desk.say("halo?")
    assert not await desk.relay.process(first.contact_id)
    [held] = await desk.outbound(first.contact_id)
    assert held.kind == HOLDING and held.text == desk.replies.get(HOLDING, "id")
    assert _statuses(await desk.inbound(first.contact_id)) == ["pending", "pending"]


async def test_the_next_outage_gets_its_own_holding_reply(desk: Desk) -> None:
    desk.rasa.down = True
    contact_id = (await desk.say("satu")).contact_id
    desk.rasa.down = False
    await desk.relay.retry_pending()  # Rasa is back: the backlog is answered
    desk.rasa.down = True
    await desk.say("dua")
    kinds = [m.kind for m in await desk.outbound(contact_id)]
    assert kinds == [HOLDING, "reply", HOLDING]


async def test_retry_pending_takes_every_waiting_contact(desk: Desk) -> None:
    desk.rasa.down = True
    ana, budi = (await desk.say("a", "ana")).contact_id, (await desk.say("b", "budi")).contact_id
    desk.rasa.down = False
    await desk.relay.retry_pending()
    assert sorted(desk.rasa.texts) == ["a", "b"]
    for contact_id in (ana, budi):
        assert _statuses(await desk.inbound(contact_id)) == [InboundStatus.DONE]


async def test_a_turn_another_process_finished_is_not_recorded_twice(desk: Desk) -> None:
    async def other_process(body: dict[str, Any]) -> None:
        async with desk.sessions() as s, s.begin():
            inbound_id = int(body["metadata"]["message_id"])
            assert await messages.finish_inbound(s, inbound_id, "en", "elsewhere", 0.5)

    desk.rasa.during = other_process
    received = await desk.say("halo")
    [inbound] = await desk.inbound(received.contact_id)
    assert (inbound.language, inbound.intent) == ("en", "elsewhere")  # the first one's
    assert await desk.outbound(received.contact_id) == []  # no second set of replies
    assert len(desk.rasa.asked) == 1


async def _hand_off(desk: Desk, user: str) -> int:
    async with desk.sessions() as s, s.begin():
        contact = await messages.get_or_create_contact(s, "telegram", user)
        await start_handoff(s, contact)
        return contact.id


async def test_a_handed_off_conversation_waits_for_a_person(desk: Desk) -> None:
    contact_id = await _hand_off(desk, "worker-1")
    await desk.say("halo petugas")
    assert desk.rasa.asked == []
    assert _statuses(await desk.inbound(contact_id)) == [InboundStatus.HANDOFF]
    assert await desk.outbound(contact_id) == []


async def test_an_emergency_word_in_a_handoff_alerts_without_rasa(desk: Desk) -> None:
    contact_id = await _hand_off(desk, "worker-1")
    await desk.say("darurat")
    assert desk.rasa.asked == []
    async with desk.sessions() as s:
        cases = (await s.scalars(select(Case).where(Case.contact_id == contact_id))).all()
    assert [(c.priority, c.category) for c in cases] == [("urgent", "emergency")]
    [reply] = await desk.outbound(contact_id)
    assert "+62 812 9007 0027" in reply.text


async def test_an_app_command_is_answered_without_rasa_even_when_it_is_down(desk: Desk) -> None:
    desk.rasa.down = True
    received = await desk.say("/bahasa")
    [reply] = await desk.outbound(received.contact_id)
    assert reply.text == desk.replies.get("choose_language", "id") and reply.buttons
    assert _statuses(await desk.inbound(received.contact_id)) == [InboundStatus.DONE]


async def test_a_flooding_contact_is_skipped_and_told_once(
    sessions: Sessions, rasa: RelayChannel
) -> None:
    limits = RateLimitSettings(max_messages=2, window_seconds=60, notice_minutes=60)
    async with aiohttp.ClientSession() as http:
        plain = await _desk(sessions, rasa, http)
        limiter = RateLimiter(limits, sessions, plain.replies)
        desk = await _desk(sessions, rasa, http, limiter=limiter)
        for n in range(4):
            contact_id = (await desk.say(f"spam {n}")).contact_id
        await desk.say("halo", "quiet-worker")
    assert rasa.texts == ["spam 0", "spam 1", "halo"]
    assert _statuses(await desk.inbound(contact_id)) == ["done", "done", "pending", "pending"]
    notices = [m for m in await desk.outbound(contact_id) if m.kind == NOTICE]
    assert [m.text for m in notices] == [desk.replies.get(NOTICE, "id")]


@dataclass
class Capped:
    """Case limits that are always reached, and the turns they were told of."""

    counted: list[str | None] = field(default_factory=list)

    def reached(self, contact_id: int) -> bool:
        return True

    def count(self, contact_id: int, intent: str | None) -> None:
        self.counted.append(intent)


async def test_a_contact_over_its_case_limit_is_flagged_to_rasa(
    sessions: Sessions, rasa: RelayChannel
) -> None:
    capped = Capped()
    async with aiohttp.ClientSession() as http:
        desk = await _desk(sessions, rasa, http, case_limits=capped)
        await desk.say("darurat tolong")
    [asked] = rasa.asked
    assert asked["metadata"]["case_limit_reached"] is True
    assert capped.counted == []  # a capped turn is not counted again


async def test_a_duplicate_delivery_is_stored_and_processed_once(desk: Desk) -> None:
    incoming = Incoming("telegram", "worker-1", "same-id", "halo")
    first = await desk.inbox.accept(incoming, answer_now=True)
    again = await desk.inbox.accept(incoming, answer_now=True)
    assert first.inbound_id is not None and again.inbound_id is None
    assert again.contact_id == first.contact_id and desk.rasa.texts == ["halo"]
