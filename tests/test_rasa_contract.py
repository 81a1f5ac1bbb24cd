"""The Rasa internals the relay channel relies on are those it was checked against.

`rasa_project/channels/rasa_internals.py` uses parts of Rasa 3.6 that have no documented
extension point. This test runs in the Rasa environment (`.venv-rasa`) and fails on any
upgrade, or any change to one of those functions, until someone has re-read them and
updated the pins below.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RASA_PYTHON = ROOT / ".venv-rasa" / "bin" / "python"

RASA_VERSION = "3.6.21"
# Function -> first 16 hex digits of the SHA-256 of its source in RASA_VERSION.
SOURCE_HASHES = {
    "MessageProcessor.handle_message": "0c41d4780d2d4676",
    "MessageProcessor.log_message": "f2f8ec66a291d83d",
    "MessageProcessor.run_action_extract_slots": "ff52049be97dde87",
    "MessageProcessor._run_prediction_loop": "cb30a0cbb690c571",
    "MessageProcessor._run_action": "6d383d0179ef1187",
    "MessageProcessor.run_anonymization_pipeline": "1a0953a2cbf34f66",
    "MessageProcessor.save_tracker": "e4532dd4d2970f5d",
    "ActionExtractSlots._run_custom_action": "a20d71ee74b1cd5c",
    "RemoteAction.run": "ccabf6f1160d527a",
    "FailSafeTrackerStore.__init__": "a1d5d95d2f96830b",
}
# The parameters each is called with (names and order).
PARAMETERS = {
    "MessageProcessor.handle_message": ["self", "message"],
    "MessageProcessor.log_message": ["self", "message", "should_save_tracker"],
    "MessageProcessor.run_action_extract_slots": ["self", "output_channel", "tracker"],
    "MessageProcessor._run_prediction_loop": ["self", "output_channel", "tracker"],
    "MessageProcessor._run_action": [
        "self", "action", "tracker", "output_channel", "nlg", "prediction"
    ],
    "MessageProcessor.run_anonymization_pipeline": ["self", "tracker"],
    "MessageProcessor.save_tracker": ["self", "tracker"],
    "ActionExtractSlots._run_custom_action": [
        "self", "custom_action", "output_channel", "nlg", "tracker", "domain"
    ],
    "RemoteAction.run": ["self", "output_channel", "nlg", "tracker", "domain"],
    "FailSafeTrackerStore.__init__": [
        "self", "tracker_store", "on_tracker_store_error", "fallback_tracker_store"
    ],
}  # fmt: skip

PROBE = """
import inspect, json
from rasa_project.channels import rasa_internals as r
report = r.fingerprint()
for name, function in r.RELIED_ON.items():
    parameters = inspect.signature(r._original(function)).parameters
    report["functions"][name]["parameters"] = list(parameters)
print("FINGERPRINT " + json.dumps(report))
"""


@pytest.fixture(scope="module")
def fingerprint() -> dict:
    if not RASA_PYTHON.exists():
        pytest.fail(f"{RASA_PYTHON} is missing: run `make setup`")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    env["RASA_TELEMETRY_ENABLED"] = "false"
    done = subprocess.run(
        [str(RASA_PYTHON), "-W", "ignore", "-c", PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("FINGERPRINT ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    return json.loads(lines[-1].removeprefix("FINGERPRINT "))


def test_rasa_is_the_version_the_channel_was_checked_against(fingerprint: dict) -> None:
    assert fingerprint["rasa"] == RASA_VERSION, (
        f"Rasa is {fingerprint['rasa']}, the relay channel was checked against "
        f"{RASA_VERSION}: re-read rasa_project/channels/rasa_internals.py against it "
        "(or replace it with a documented extension point) before updating the pins"
    )


def test_the_functions_relied_on_are_unchanged(fingerprint: dict) -> None:
    functions = fingerprint["functions"]
    assert set(functions) == set(SOURCE_HASHES)
    changed = {n: f["sha256"] for n, f in functions.items() if f["sha256"] != SOURCE_HASHES[n]}
    assert not changed, (
        f"Rasa internals used by rasa_project/channels/rasa_internals.py changed: {changed}; "
        "re-read them, then update SOURCE_HASHES"
    )
    for name, expected in PARAMETERS.items():
        assert functions[name]["parameters"] == expected, name
