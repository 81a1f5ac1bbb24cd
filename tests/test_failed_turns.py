"""A message whose turn fails (Rasa answers 500: an action raised on it) is tried again with
backoff, then given to a person (`pmi.failed_turns`), without holding up anyone else.
The relay channel is the local fake of `tests/test_relay.py`; the database is real."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web

from bot.relay import Relay
from pmi import failed_turns
from pmi.models import Contact, InboundStatus
from tests.support import make_settings
from tests.test_relay import Desk, RelayChannel, Sessions, _statuses

HOLDING = "holding"
TEXT = "tolong cek status laporan saya"  # its action raises


@dataclass
class BrokenChannel(RelayChannel):
    """Answers 500 ("action failed") to the texts in `broken`, like Rasa's relay channel."""

    broken: set[str] = field(default_factory=set)

    async def _turn(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body["message"] in self.broken:
            self.asked.append(body)
            failure = {"error": "action failed", "actions": ["action_case_status"]}
            return web.json_response(failure, status=500)
        return await super()._turn(request)


@pytest.fixture
async def broken() -> AsyncIterator[BrokenChannel]:
    fake = BrokenChannel(broken={TEXT})
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


async def _desk(sessions: Sessions, rasa: BrokenChannel, http, backoff) -> Desk:  # type: ignore[no-untyped-def]
    from bot.inbox import Inbox
    from bot.rasa_client import RasaClient
    from pmi.knowledge import Replies

    settings = make_settings("sqlite://", f"http://127.0.0.1:{rasa.port}")
    rasa_settings = settings.rasa.model_copy(update={"failed_turn_backoff_seconds": backoff})
    settings = settings.model_copy(update={"rasa": rasa_settings})
    replies = Replies.load(settings.content.replies_file, settings.language.fallbacks)
    relay = Relay(settings, sessions, RasaClient(http, settings.rasa.url, 5), replies)
    return Desk(sessions, rasa, relay, Inbox(sessions, relay), replies)


async def test_a_message_that_keeps_failing_goes_to_a_person(
    sessions: Sessions, broken: BrokenChannel
) -> None:
    async with aiohttp.ClientSession() as http:
        desk = await _desk(sessions, broken, http, (0.0, 0.0))
        contact_id = (await desk.say(TEXT)).contact_id
        await desk.say("halo?")  # waits behind it
        await desk.relay.retry_pending()
        await desk.relay.retry_pending()
        assert broken.texts == [TEXT] * 3  # tried 3 times (backoff of 2), not more
        first, second = await desk.inbound(contact_id)
        assert (first.status, first.attempts) == (InboundStatus.FAILED, 3)
        assert first.last_error == "action failed: action_case_status"
        assert second.status == InboundStatus.HANDOFF  # the next one waits for the person
        kinds = [m.kind for m in await desk.outbound(contact_id)]
        assert kinds == [HOLDING, failed_turns.REPLY]  # one holding reply, then "a person"
        [told] = [m for m in await desk.outbound(contact_id) if m.kind == failed_turns.REPLY]
        assert told.text == desk.replies.get(failed_turns.REPLY, "id")
        async with sessions() as s:
            assert (await s.get(Contact, contact_id)).handoff  # type: ignore[union-attr]
        await desk.relay.retry_pending()
        assert broken.texts == [TEXT] * 3  # given up: never asked again


async def test_a_failing_message_waits_its_turn_and_holds_up_nobody_else(
    sessions: Sessions, broken: BrokenChannel
) -> None:
    async with aiohttp.ClientSession() as http:
        desk = await _desk(sessions, broken, http, (3600.0,))
        ana = (await desk.say(TEXT, "ana")).contact_id
        await desk.say("dua", "ana")
        budi = (await desk.say("halo", "budi")).contact_id
        await desk.relay.retry_pending()  # Ana's first message is not due again for an hour
        assert broken.texts == [TEXT, "halo"]
        assert _statuses(await desk.inbound(ana)) == [InboundStatus.PENDING] * 2
        assert _statuses(await desk.inbound(budi)) == [InboundStatus.DONE]
        [first, _] = await desk.inbound(ana)
        assert failed_turns.waiting(first)


async def test_a_message_that_succeeds_on_its_second_try_is_answered_in_order(
    sessions: Sessions, broken: BrokenChannel
) -> None:
    async with aiohttp.ClientSession() as http:
        desk = await _desk(sessions, broken, http, (0.0, 0.0))
        contact_id = (await desk.say(TEXT)).contact_id
        broken.broken.clear()  # the action server was fixed
        await desk.say("dua")  # its turn first tries the failed one again
        assert broken.texts == [TEXT, TEXT, "dua"]
        assert _statuses(await desk.inbound(contact_id)) == [InboundStatus.DONE] * 2
        replies = [m.text for m in await desk.outbound(contact_id) if m.kind == "reply"]
        assert replies == [f"echo {TEXT}", "echo dua"]
