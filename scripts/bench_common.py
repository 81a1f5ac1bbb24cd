"""What the parts of `make bench` share: its paths and databases, its progress lines."""

from __future__ import annotations

import os
import subprocess
import time

from devtools.model import ROOT

REPORTS = ROOT / "reports"
CONVERSATIONS = ROOT / "scripts" / "bench_conversations.yml"
POSTGRES_ADMIN_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS = ("127.0.0.1", 6379)
CLOCK = time.monotonic()


def say(message: str) -> None:
    """Progress line with the elapsed time."""
    print(f"[bench {time.monotonic() - CLOCK:6.0f}s] {message}", flush=True)


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
    except OSError:
        return "unknown"
    return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
