"""Train the Rasa model only when its inputs changed.

The model is named by a hash of everything that shapes it (pipeline, domain,
training data, custom components, the lexicon, the Rasa lock file), kept under
`models/` and in a per-user cache shared by clones on the same machine, so a
second `make run`/`make test` or a fresh clone of the same commit never retrains.

The command line: `python -m scripts.model [--print-path]` (`make model`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RASA_DIR = ROOT / "rasa_project"
MODELS = ROOT / "models"
RASA_BIN = ROOT / ".venv-rasa" / "bin" / "rasa"
INPUTS = (
    RASA_DIR / "config.yml",
    RASA_DIR / "domain",
    RASA_DIR / "data",
    RASA_DIR / "components",
    ROOT / "data" / "danger_lexicon.yml",
    ROOT / "data" / "case_labels.yml",
    ROOT / "data" / "commands.yml",
    ROOT / "pmi" / "danger.py",
    ROOT / "requirements" / "rasa.txt",
)


def cache_dir() -> Path:
    base = os.environ.get("PMI_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "pmi-helpdesk"
    )
    return Path(base) / "models"


def input_files() -> list[Path]:
    files: list[Path] = []
    for path in INPUTS:
        if path.is_dir():
            files += sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
            )
        elif path.is_file():
            files.append(path)
    return files


def inputs_hash() -> str:
    digest = hashlib.sha256()
    for path in input_files():
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def model_path() -> Path:
    return MODELS / f"pmi-{inputs_hash()}.tar.gz"


# Serving a turn: TensorFlow on one thread. The model is small; TF's thread pools only spin
# against the app, the action server and the database for the same cores. Measured with
# `make bench`'s harness on 2 cores: Rasa alone saturated 8.4 -> 8.9-9.4 messages/s, CPU per
# message 114 -> 104-108 ms. Training keeps TF's defaults.
SERVE_ENV = {"TF_INTER_OP_PARALLELISM_THREADS": "1", "TF_INTRA_OP_PARALLELISM_THREADS": "1"}


def rasa_env(*, serving: bool = False) -> dict[str, str]:
    """The environment of a Rasa process: training, or `serving` (`rasa run`)."""
    env = dict(os.environ)
    if serving:
        for key, value in SERVE_ENV.items():
            env.setdefault(key, value)
    env["RASA_TELEMETRY_ENABLED"] = "false"
    env["PYTHONPATH"] = str(ROOT)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")
    return env


def train(target: Path, config: Path = RASA_DIR / "config.yml") -> None:
    """Run `rasa train` with `config`, streaming its progress, into `target`."""
    target.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        str(RASA_BIN),
        "train",
        "--config",
        str(config),
        "--domain",
        str(RASA_DIR / "domain"),
        "--data",
        str(RASA_DIR / "data"),
        "--out",
        str(target.parent),
        "--fixed-model-name",
        target.name.removesuffix(".tar.gz"),
        "--force",
    ]
    print(f"[model] training {target.name}; this takes a few minutes…", flush=True)
    started = time.monotonic()
    subprocess.run(cmd, cwd=ROOT, env=rasa_env(), check=True)
    print(f"[model] trained in {time.monotonic() - started:.0f}s", flush=True)


def ensure_model() -> Path:
    """Return the model for the current inputs, training it only if no copy exists."""
    target = model_path()
    cached = cache_dir() / target.name
    if target.exists():
        print(f"[model] up to date: {target.relative_to(ROOT)}", flush=True)
    elif cached.exists():
        MODELS.mkdir(exist_ok=True)
        shutil.copy2(cached, target)
        print(f"[model] reused from cache: {cached}", flush=True)
    else:
        train(target)
        cached.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(target, cached.with_suffix(".tmp"))
        cached.with_suffix(".tmp").replace(cached)
    for old in MODELS.glob("pmi-*.tar.gz"):
        if old != target:
            old.unlink()
    return target
