"""Password checks off the event loop, two logins at a time, in low-priority threads.

An argon2 check takes a good part of a second of CPU (four lanes). On the event loop it
would stall every chat and webhook; in ordinary threads, many logins at once still take
the CPU from the loop. So checks run in a pool of their own, behind a semaphore, in
threads of lower scheduling priority (Linux: niceness is per thread, and argon2's lane
threads inherit it), and the loop stays responsive while logins queue.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

from pmi import staff

logger = logging.getLogger(__name__)
CONCURRENT = 2
# Lower than the event loop, not the lowest: at 19 a host busy with other work (Rasa on
# the same machine) would starve logins for minutes; at 10 the loop still gets ~90% of a
# CPU the checks compete for.
NICENESS = 10


def _background_priority() -> None:
    if sys.platform == "linux":  # elsewhere the call would renice the whole process
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICENESS)
        except OSError:
            logger.warning("could not lower the priority of a password-check thread")


class PasswordChecker:
    """Runs `pmi.staff.verify_password` in its own threads, for CONCURRENT logins at once.

    A login takes a `turn` for all its work (its short transactions too): many logins at
    once then queue here, holding no database connection, instead of crowding SQLite's
    write lock and the connection pool that the chats need.
    """

    def __init__(self, concurrent: int = CONCURRENT) -> None:
        self._pool = ThreadPoolExecutor(
            concurrent, thread_name_prefix="password-check", initializer=_background_priority
        )
        self.turn = asyncio.Semaphore(concurrent)
        self.running = 0  # checks in progress

    async def verify(self, password_hash: str | None, password: str) -> tuple[bool, str | None]:
        """Whether `password` matches (None: no such user) and a new hash if one is due.

        Call it within a `turn`.
        """
        loop = asyncio.get_running_loop()
        self.running += 1
        try:
            return await loop.run_in_executor(
                self._pool, staff.verify_password, password_hash, password
            )
        finally:
            self.running -= 1

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
