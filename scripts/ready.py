"""Wait until Rasa, the action server and the app answer, then say where to chat.

Runs as one of the honcho processes and stays alive afterwards (honcho stops the
whole stack when any process exits).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
import urllib.error
import urllib.request

from pmi.settings import load_settings

TIMEOUT = 600


def _ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 (http URLs we built)
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def wait_for(name: str, url: str, deadline: float) -> None:
    while not _ok(url):
        if time.monotonic() > deadline:
            sys.exit(f"[ready] {name} did not become ready at {url}")
        time.sleep(1)
    print(f"[ready] {name} is up", flush=True)


def main() -> None:
    settings = load_settings()
    deadline = time.monotonic() + TIMEOUT
    app_url = f"http://{settings.app.host}:{settings.app.port}"
    wait_for("action server", f"http://127.0.0.1:{os.environ['ACTION_PORT']}/health", deadline)
    # The relay channel's health check answers 200 once the model is loaded (no token).
    wait_for("rasa (model loaded)", f"{os.environ['RASA_URL']}/webhooks/relay/", deadline)
    wait_for("app", f"{app_url}/readyz", deadline)
    print(
        "\n  PMI helpdesk is running.\n"
        f"  Web chat:      {app_url}/\n"
        "  Terminal chat: make chat (in another terminal)\n"
        "  Stop:          Ctrl-C\n",
        flush=True,
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
