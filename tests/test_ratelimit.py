"""Per-contact rate limit: a flooding worker's messages are all stored, answered later, with
one "slow down" notice; other workers are answered at once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import create_app
from bot.keys import SESSIONMAKER
from pmi import messages
from pmi.db import utcnow
from pmi.knowledge import Replies
from pmi.models import Contact, InboundMessage, InboundStatus, OutboundMessage
from pmi.ratelimit import NOTICE, RateLimiter
from pmi.settings import RateLimitSettings
from tests.support import Servers, make_settings, post_chat, wait_until

REPLIES = Replies({NOTICE: {"id": "pelan-pelan", "en": "slow down"}})


async def _burst(s: AsyncSession, contact: Contact, count: int, seconds_ago: float) -> None:
    for i in range(count):
        s.add(
            InboundMessage(
                contact_id=contact.id,
                channel=contact.channel,
                external_id=f"{contact.channel_user_id}-{seconds_ago}-{i}",
                text="halo",
                received_at=utcnow() - timedelta(seconds=seconds_ago),
            )
        )
    await s.flush()


async def test_limit_and_single_notice(sessions: async_sessionmaker[AsyncSession]) -> None:
    limiter = RateLimiter(RateLimitSettings(max_messages=5, window_seconds=60), sessions, REPLIES)
    async with sessions() as s, s.begin():
        flooder = await messages.get_or_create_contact(s, "telegram", "111")
        calm = await messages.get_or_create_contact(s, "telegram", "222")
        flooder.language = "en"
        await _burst(s, flooder, 4, seconds_ago=300)  # outside the window: not counted
        await _burst(s, flooder, 5, seconds_ago=1)
        await _burst(s, calm, 2, seconds_ago=1)
        ids = flooder.id, calm.id
    assert (await limiter.check(ids[0])).allowed  # exactly at the limit
    async with sessions() as s, s.begin():
        await _burst(s, await s.get(Contact, ids[0]), 1, seconds_ago=0)
    first = await limiter.check(ids[0])
    assert (first.allowed, first.recent, first.notified) == (False, 6, True)
    second = await limiter.check(ids[0])
    assert (second.allowed, second.notified) == (False, False)  # at most one notice
    assert await limiter.admit(ids[1])
    async with sessions() as s:
        notices = (
            await s.scalars(select(OutboundMessage.text).where(OutboundMessage.kind == NOTICE))
        ).all()
    assert notices == ["slow down"]  # once, in the worker's language


@pytest.mark.e2e
async def test_flooding_worker_does_not_delay_others(servers: Servers) -> None:
    settings = make_settings(servers.database_url, servers.rasa_url)
    settings = settings.model_copy(
        update={"rate_limit": RateLimitSettings(max_messages=3, window_seconds=15)}
    )
    settings.rasa.token = servers.rasa_token
    async with TestClient(TestServer(create_app(settings), host="127.0.0.1")) as chat:
        answers = []
        for i in range(6):
            resp = await post_chat(chat, "flooder", {"text": f"halo {i}", "id": f"flood-{i}"})
            assert resp.status == 200
            answers.append((await resp.json())["messages"])
        # A reply can come with the next request's answer on a slow machine: count them all.
        replies = [m["text"] for answer in answers for m in answer]
        assert sum(t.startswith("Halo!") for t in replies) == 3  # only those under the limit
        assert sum("banyak sekali" in t for t in replies) == 1  # one "slow down" notice
        resp = await post_chat(chat, "calm-worker", {"text": "halo"})
        assert (await resp.json())["messages"]  # another worker is answered at once

        sessions = chat.app[SESSIONMAKER]

        async def flood_processed() -> bool:
            async with sessions() as s:
                contact = await messages.get_contact(s, "webchat", "flooder")
                pending = await s.scalar(
                    select(func.count()).where(
                        InboundMessage.contact_id == contact.id,
                        InboundMessage.status == InboundStatus.PENDING,
                    )
                )
                return pending == 0

        # Once the window has slid past the burst, the retry loop answers the rest, in order.
        await wait_until(flood_processed, timeout=60)
        async with sessions() as s:
            contact = await messages.get_contact(s, "webchat", "flooder")
            stored = (
                await s.scalars(
                    select(InboundMessage.text)
                    .where(InboundMessage.contact_id == contact.id)
                    .order_by(InboundMessage.id)
                )
            ).all()
        assert stored == [f"halo {i}" for i in range(6)]  # nothing lost
