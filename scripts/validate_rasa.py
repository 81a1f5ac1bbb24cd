"""`rasa data validate --fail-on-warnings`, aware of responses Rasa cannot see being used.

Rasa 3.6's validator warns that a response "is not used in any story or rule" when it
is uttered by a form (`utter_ask_<slot>`) or by a custom action. Those two cases, and
only those, are accepted here; every other warning fails. In addition, every response
the action code names must exist in the domain (a check Rasa does not make).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from devtools.model import RASA_BIN, RASA_DIR, ROOT, rasa_env

WARNING = re.compile(r"UserWarning: (.+)")
UNUSED = re.compile(r"The utterance '([\w-]+)' is not used in any story or rule\.")
ACTION_RESPONSE = re.compile(r"""response=["'](utter_[\w-]+)["']""")


def domain_files() -> list[Path]:
    return sorted((RASA_DIR / "domain").glob("*.yml"))


def form_questions() -> set[str]:
    names: set[str] = set()
    for path in domain_files():
        forms = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("forms") or {}
        for form, spec in forms.items():
            for slot in spec.get("required_slots") or []:
                names |= {f"utter_ask_{slot}", f"utter_ask_{form}_{slot}"}
    return names


def responses() -> set[str]:
    names: set[str] = set()
    for path in domain_files():
        names |= set(
            (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("responses") or {}
        )
    return names


def action_responses() -> set[str]:
    found: set[str] = set()
    for path in (ROOT / "actions").glob("*.py"):
        found |= set(ACTION_RESPONSE.findall(path.read_text(encoding="utf-8")))
    return found


def main() -> int:
    cmd = [
        str(RASA_BIN), "data", "validate",
        "--config", str(RASA_DIR / "config.yml"),
        "--domain", str(RASA_DIR / "domain"),
        "--data", str(RASA_DIR / "data"),
    ]  # fmt: skip
    result = subprocess.run(cmd, cwd=ROOT, env=rasa_env(), capture_output=True, text=True)
    output = result.stdout + result.stderr
    used_elsewhere = action_responses() | form_questions()
    problems = []
    for message in WARNING.findall(output):
        unused = UNUSED.fullmatch(message.strip())
        if unused and unused.group(1) in used_elsewhere:
            continue
        problems.append(f"warning: {message.strip()}")
    missing = sorted(action_responses() - responses())
    problems += [
        f"error: actions utter '{name}', which the domain does not define" for name in missing
    ]
    if result.returncode != 0:
        problems.append(f"error: rasa data validate exited with {result.returncode}")
        sys.stderr.write(output[-6000:])
    for line in problems:
        print(line)
    print(f"rasa data validate: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
