"""`make test` step: Rasa's own conversation tests (rasa_project/tests/*.yml).

Runs `rasa test core --fail-on-prediction-errors` on the trained model (trained only if
its inputs changed), as a Rasa project keeps its dialogue tests; the failed stories are
written to var/rasa-test/failed_test_stories.yml and printed.
"""

from __future__ import annotations

import subprocess
import sys

from devtools.model import RASA_BIN, RASA_DIR, ROOT, ensure_model, rasa_env

OUT = ROOT / "var" / "rasa-test"


def main() -> int:
    model = ensure_model()
    OUT.mkdir(parents=True, exist_ok=True)
    cmd = [
        str(RASA_BIN), "test", "core", "--model", str(model),
        "--stories", str(RASA_DIR / "tests"), "--out", str(OUT),
        "--fail-on-prediction-errors", "--no-plot",
        "--endpoints", str(RASA_DIR / "endpoints.yml"),
    ]  # fmt: skip
    print("[rasa-test] rasa test core on rasa_project/tests", flush=True)
    done = subprocess.run(cmd, cwd=ROOT, env=rasa_env(), capture_output=True, text=True)
    failed = OUT / "failed_test_stories.yml"
    if done.returncode != 0:
        sys.stdout.write(done.stdout[-4000:] + done.stderr[-4000:])
        if failed.exists():
            sys.stdout.write(failed.read_text(encoding="utf-8"))
        return done.returncode
    print("[rasa-test] every story predicted as written", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
