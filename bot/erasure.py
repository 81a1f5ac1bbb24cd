"""Deletes queued conversations from Rasa's tracker store until Rasa confirms each one."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.rasa_client import RasaClient
from pmi import erasure

logger = logging.getLogger(__name__)
TICK_SECONDS = 10.0


class ErasureWorker:
    """Background task of the app over the queue of `pmi.erasure` (several processes may
    run it: claims are row-locked and leased)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], rasa: RasaClient) -> None:
        self._sessions = sessions
        self._rasa = rasa
        self._wake = asyncio.Event()

    def notify(self) -> None:
        """A request was queued: look now instead of at the next tick."""
        self._wake.set()

    async def erase_one(self) -> bool | None:
        """One due request: True erased, False to retry later, None when nothing is due.

        Claimed in a short transaction, sent with none open, recorded in a second one.
        """
        async with self._sessions() as s, s.begin():
            request = await erasure.claim(s)
            if request is None:
                return None
            request_id, conversation = request.id, request.conversation_id
        confirmed = await self._rasa.forget(conversation)
        async with self._sessions() as s, s.begin():
            if confirmed:
                await erasure.done(s, request_id)
            else:
                await erasure.failed(s, request_id, "rasa did not confirm the deletion")
        if not confirmed:
            logger.warning("erasure request %s failed; it will be retried", request_id)
        return confirmed

    async def run(self, tick: float = TICK_SECONDS) -> None:
        while True:
            try:
                while await self.erase_one() is not None:
                    pass
            except Exception:  # keep the loop alive; the traceback is logged
                logger.exception("erasure round failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), tick)
