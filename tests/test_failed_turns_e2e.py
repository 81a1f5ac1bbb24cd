"""A poison message through the real stack: the action behind "cek status laporan sy"
always raises (a second real action server with `tests.poison_actions`); Rasa answers the
turn as failed, the app tries it 3 times, hands the conversation to a person with one
reply, shows the error in the console's conversation, and the worker's next message is
kept for that person instead of waiting forever."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from devtools.net import free_port
from devtools.service import Service
from pmi import failed_turns
from pmi.db import create_engine, create_sessionmaker
from pmi.models import Contact, InboundMessage, InboundStatus
from tests.support import Servers, joined, say, updates, wait_until

TEXT = "cek status laporan sy"  # the instruction the bot gives for a case's status


@pytest.fixture
def poisoned(servers: Servers, tmp_path) -> Iterator[Servers]:
    """Rasa's action calls go to an action server whose `action_case_status` raises."""
    port = free_port()
    broken = Service(
        "poisoned action server",
        [sys.executable, "-m", "actions.server", "-p", str(port), "--actions",
         "tests.poison_actions"],
        servers.env,
        port,
        f"http://127.0.0.1:{port}/health",
        tmp_path / "poisoned-actions.log",
    )  # fmt: skip
    broken.start()
    gate = servers.action_gate
    real = gate.target
    try:
        broken.wait_ready(60)
        gate.target = ("127.0.0.1", port)
        gate.close()  # drop kept-alive links to the real server
        gate.open()
        yield servers
    finally:
        gate.target = real
        gate.close()
        gate.open()
        broken.stop()


async def test_a_message_whose_action_always_fails_goes_to_a_person(chat, poisoned) -> None:
    sender = "poison-1"
    first = joined(await say(chat, sender, TEXT))
    # The first failure: the message is kept and the worker is told to wait.
    assert "tersimpan" in first or first == ""
    told: list[str] = [first]

    async def handed_over() -> bool:
        told.append(joined(await updates(chat, sender)))
        return "petugas akan membaca" in "\n".join(told)

    await wait_until(handed_over, timeout=30)
    engine = create_engine(poisoned.database_url)
    try:
        async with create_sessionmaker(engine)() as s:
            contact = await s.scalar(select(Contact).where(Contact.channel_user_id == sender))
            assert contact is not None and contact.handoff
            [message] = await s.scalars(
                select(InboundMessage).where(InboundMessage.contact_id == contact.id)
            )
            assert (message.status, message.attempts) == (InboundStatus.FAILED, 3)
            assert message.last_error == "action failed: action_case_status"
        later = await say(chat, sender, "halo, ada orang?")
        assert later == []  # kept for the person who has the conversation now
        async with create_sessionmaker(engine)() as s:
            statuses = list(
                await s.scalars(
                    select(InboundMessage.status)
                    .where(InboundMessage.contact_id == contact.id)
                    .order_by(InboundMessage.id)
                )
            )
        assert statuses == [InboundStatus.FAILED, InboundStatus.HANDOFF]
    finally:
        await engine.dispose()
    assert failed_turns.REPLY == "turn_failed"
