"""Developer and operations scripts (run with the .venv interpreter)."""
