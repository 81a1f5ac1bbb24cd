"""`make model`: train the Rasa model only when its inputs changed (devtools/model.py).

Usage: python -m scripts.model [--print-path]
"""

from __future__ import annotations

import sys

from devtools.model import ensure_model, model_path

if __name__ == "__main__":
    if "--print-path" in sys.argv:
        print(model_path())
    else:
        ensure_model()
