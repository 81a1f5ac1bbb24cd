"""Questions to the app's database about a load run: where an answered message's time went,
whether an update was stored, which kinds of replies a chat got."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from devtools.load import Turn
from devtools.stats import summary


async def stages(database_url: str, turns: Sequence[Turn]) -> dict[str, Any]:
    """Where an answered message's time goes, from the app's own timestamps (medians, ms).

    posted -> stored (webhook) -> processed (relay + Rasa + actions) -> reply sent (outbox)
    -> delivered (seen by the fake Bot API).
    """
    from sqlalchemy import select

    from pmi.db import create_engine
    from pmi.models import InboundMessage, OutboundMessage

    by_update = {str(t.update_id): t for t in turns if t.replies}
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(
                        InboundMessage.external_id,
                        InboundMessage.received_at,
                        InboundMessage.processed_at,
                        OutboundMessage.created_at,
                        OutboundMessage.sent_at,
                    )
                    .join(OutboundMessage, OutboundMessage.inbound_id == InboundMessage.id)
                    .where(
                        InboundMessage.channel == "telegram",
                        InboundMessage.external_id.in_(list(by_update)),
                    )
                    .order_by(OutboundMessage.id)
                )
            ).all()
    finally:
        await engine.dispose()
    first: dict[str, Any] = {}
    for row in rows:
        first.setdefault(row.external_id, row)  # the first reply of each message
    parts: dict[str, list[float]] = {
        "webhook_to_stored": [],
        "stored_to_processed": [],
        "processed_to_sent": [],
        "sent_to_delivered": [],
    }
    for update_id, row in first.items():
        turn = by_update[update_id]
        if None in (row.received_at, row.processed_at, row.sent_at):
            continue
        delivered_wall = turn.sent_wall + (min(turn.replies) - turn.sent_at)
        received, processed, sent = (
            row.received_at.timestamp(),
            row.processed_at.timestamp(),
            row.sent_at.timestamp(),
        )
        parts["webhook_to_stored"].append(received - turn.sent_wall)
        parts["stored_to_processed"].append(processed - received)
        parts["processed_to_sent"].append(sent - processed)
        parts["sent_to_delivered"].append(delivered_wall - sent)
    return {k: summary(v) for k, v in parts.items()}


async def stored(database_url: str, update_id: int) -> bool:
    from sqlalchemy import select

    from pmi.db import create_engine
    from pmi.models import InboundMessage

    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            found = await conn.scalar(
                select(InboundMessage.id).where(
                    InboundMessage.channel == "telegram",
                    InboundMessage.external_id == str(update_id),
                )
            )
    finally:
        await engine.dispose()
    return found is not None


async def reply_kinds(database_url: str, chat_id: int) -> list[str]:
    from sqlalchemy import select

    from pmi.db import create_engine
    from pmi.models import Contact, OutboundMessage

    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.scalars(
                select(OutboundMessage.kind)
                .join(Contact, Contact.id == OutboundMessage.contact_id)
                .where(Contact.channel == "telegram", Contact.channel_user_id == str(chat_id))
                .order_by(OutboundMessage.id)
            )
            return list(rows)
    finally:
        await engine.dispose()
