"""JSON log lines (LOG_FORMAT=json): one object per line, ids kept, personal data masked."""

from __future__ import annotations

import io
import json
import logging
import sys

from pmi.jsonlog import JsonFormatter, configure_logging
from pmi.logs import mask_record


def _line(record: logging.LogRecord) -> dict:
    text = JsonFormatter().format(record)
    assert "\n" not in text
    return json.loads(text)


def test_a_record_is_one_json_line_with_its_ids() -> None:
    record = logging.LogRecord("bot.relay", logging.WARNING, __file__, 1, "turn %s", ("x",), None)
    record.contact_id, record.inbound_id = 7, 42
    entry = _line(record)
    assert entry["message"] == "turn x" and entry["level"] == "WARNING"
    assert entry["logger"] == "bot.relay" and entry["ts"].endswith("+00:00")
    assert (entry["contact_id"], entry["inbound_id"]) == (7, 42)


def test_exceptions_stay_on_the_line_and_phone_numbers_are_masked() -> None:
    try:
        raise ValueError("call +966501234567")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    entry = _line(mask_record(record))
    assert "ValueError" in entry["exception"]
    assert "+966501234567" not in json.dumps(entry)


def test_json_format_takes_over_handlers_installed_before() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("pmi.test.jsonlog")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        configure_logging(log_format="json")
        logger.warning("hello %s", "there", extra={"case_id": 3})
    finally:
        logger.removeHandler(handler)
        for h in logging.getLogger().handlers:
            h.setFormatter(logging.Formatter())
    entry = json.loads(stream.getvalue())
    assert entry["message"] == "hello there" and entry["case_id"] == 3
