"""One process of the stack on its own port and log file: start, readiness, stop, kill.

Each runs in its own process group, so that a kill reaches its workers too; its CPU time
and peak memory are read from /proc.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from devtools.model import ROOT
from devtools.procfs import children, cpu_seconds, peak_rss_kb

logger = logging.getLogger(__name__)


@dataclass
class Service:
    """One process of the stack (Rasa, action server or app) on its own port and log file."""

    name: str
    argv: list[str]
    env: dict[str, str]
    port: int
    ready_url: str
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    started_at: float | None = None  # time.monotonic() of the last start
    ready_seconds: float | None = None  # from the last start to ready
    peak_mb: float = 0.0  # highest peak RSS seen over every run of this service

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        """Start the process (in its own process group, so that kill reaches its workers)."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        log = self.log_path.open("ab")
        try:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        self.started_at = time.monotonic()
        self.ready_seconds = None
        logger.info("started %s (pid %s) on port %s", self.name, self.proc.pid, self.port)

    def is_ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.ready_url, timeout=2) as resp:  # noqa: S310
                return resp.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def _check(self) -> float | None:
        """The seconds from the start to ready once the ready URL answers 200, else None;
        raises if the process exited."""
        if not self.running:
            raise RuntimeError(f"{self.name} exited; see {self.log_path}:\n{self.tail()}")
        if not self.is_ready():
            return None
        assert self.started_at is not None
        self.ready_seconds = time.monotonic() - self.started_at
        return self.ready_seconds

    def _late(self, timeout: float) -> RuntimeError:
        return RuntimeError(f"{self.name} not ready after {timeout}s at {self.ready_url}")

    def wait_ready(self, timeout: float = 300) -> float:
        """Block until the ready URL answers 200; return the seconds since the start."""
        deadline = time.monotonic() + timeout
        while (seconds := self._check()) is None:
            if time.monotonic() >= deadline:
                raise self._late(timeout)
            time.sleep(0.2)
        return seconds

    async def ready(self, within: float = 300) -> float:
        """`wait_ready` for asyncio code (the fake Bot API must keep answering meanwhile)."""
        deadline = time.monotonic() + within
        while (seconds := await asyncio.to_thread(self._check)) is None:
            if time.monotonic() >= deadline:
                raise self._late(within)
            await asyncio.sleep(0.2)
        return seconds

    def pids(self) -> list[int]:
        if not self.running:
            return []
        assert self.proc is not None
        return [self.proc.pid, *children(self.proc.pid)]

    def cpu_seconds(self) -> float:
        """CPU time used so far by the process and its live workers."""
        return sum(cpu_seconds(pid) for pid in self.pids())

    def peak_rss_mb(self) -> float:
        """Peak RSS of the process and its workers (sum of their VmHWM), in MB.

        Read live from /proc; the highest value seen is kept across restarts.
        """
        now = sum(peak_rss_kb(pid) for pid in self.pids()) / 1024
        self.peak_mb = max(self.peak_mb, now)
        return self.peak_mb

    def _signal_group(self, sig: int) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def stop(self, timeout: float = 20) -> None:
        """Stop gracefully (SIGTERM), then SIGKILL after `timeout` seconds."""
        if not self.running:
            return
        self.peak_rss_mb()
        assert self.proc is not None
        self._signal_group(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            self.proc.wait()
        logger.info("stopped %s", self.name)

    def kill(self) -> None:
        """Crash it: SIGKILL to the whole process group, no clean-up."""
        if not self.running:
            return
        self.peak_rss_mb()
        assert self.proc is not None
        self._signal_group(signal.SIGKILL)
        self.proc.wait()
        logger.info("killed %s", self.name)

    def restart(self, *, wait: bool = True, timeout: float = 300) -> float | None:
        """Stop (if running) and start again on the same port; wait until ready if asked."""
        self.stop()
        self.start()
        return self.wait_ready(timeout) if wait else None

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""
