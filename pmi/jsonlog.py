"""Log output for the app and the action server: text for people, JSON lines for collectors.

`LOG_FORMAT=json` writes one JSON object per line: time, level, logger, message, the
exception if any, and the structured fields passed with `extra=` (ids such as
`contact_id`, `inbound_id`, `case_id`; never message bodies or personal data, which are
masked anyway by `pmi.logs`). Anything else (the default) keeps the plain text lines.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from typing import Any

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# Attributes every LogRecord has: whatever else a record carries came with `extra=`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value if isinstance(value, str | int | float | bool) else repr(value)
        if record.exc_text:  # already formatted (and masked, see pmi.logs)
            entry["exception"] = record.exc_text
        elif record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(
    level: int = logging.INFO, log_format: str | None = None, *, text_default: bool = True
) -> None:
    """Set up this process's log output; with JSON, also re-format handlers set up earlier
    (rasa-sdk and Sanic install their own before the action code is imported).

    `text_default=False` leaves text logging to whoever set it up (the action server).
    """
    log_format = (log_format or os.environ.get("LOG_FORMAT") or "text").lower()
    root = logging.getLogger()
    if log_format != "json":
        if text_default and not root.handlers:
            logging.basicConfig(level=level, format=TEXT_FORMAT)
        return
    formatter = JsonFormatter()
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    root.setLevel(level)
    loggers = [root, *(logging.getLogger(name) for name in list(logging.root.manager.loggerDict))]
    for logger in loggers:
        for handler in logger.handlers:
            handler.setFormatter(formatter)
