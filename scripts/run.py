"""Start the whole stack (Rasa, action server, app) under honcho with one environment.

A Rasa API token is generated for this run unless RASA_TOKEN is set. The web chat, off by
default, is on (`WEBCHAT_ENABLED=1`): this is the local stack, on 127.0.0.1.
"""

from __future__ import annotations

import os
import secrets
import sys

from devtools.model import ROOT, model_path, rasa_env
from pmi.db import private_file


def stack_env() -> dict[str, str]:
    env = rasa_env(serving=True)
    env.setdefault("RASA_TOKEN", secrets.token_hex(32))  # the app <-> Rasa relay channel
    env.setdefault("ACTION_SERVER_TOKEN", secrets.token_hex(32))  # Rasa <-> the action server
    tracker = ROOT / "var" / "rasa-tracker.db"  # Rasa's conversations (SQL tracker store)
    env.setdefault("RASA_TRACKER_DB", str(tracker))
    private_file(tracker)
    env.setdefault("RASA_PORT", "5005")
    env.setdefault("ACTION_PORT", "5055")
    env.setdefault("RASA_URL", f"http://127.0.0.1:{env['RASA_PORT']}")
    env.setdefault("ACTION_SERVER_URL", f"http://127.0.0.1:{env['ACTION_PORT']}/webhook")
    env["SANIC_HOST"] = "127.0.0.1"  # the action server listens on loopback only
    env["RASA_MODEL"] = str(model_path())
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("PTB_TIMEDELTA", "1")
    env.setdefault("WEBCHAT_ENABLED", "1")  # the local web chat and `make chat`
    return env


def main() -> None:
    env = stack_env()
    if not os.path.exists(env["RASA_MODEL"]):
        sys.exit("no trained model for the current sources: run `make model` first")
    honcho = str(ROOT / ".venv" / "bin" / "honcho")
    os.chdir(ROOT)
    os.execve(honcho, [honcho, "start", "-f", "Procfile", "-d", str(ROOT)], env)  # noqa: S606


if __name__ == "__main__":
    main()
