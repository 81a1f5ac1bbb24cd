"""Logging shared by the app and the action server: personal data masked in every record.

Code should not log personal data in the first place; this is the safety net for what slips
through (an exception quoting a phone number, a library logging a request). Phone numbers,
passport numbers and e-mail addresses are masked (`pmi.privacy.mask_text`) in the message,
its arguments and the traceback of every record, whichever logger or handler it goes to: the
masking sits in the log record factory, so it also covers handlers that libraries (rasa-sdk,
sanic, aiohttp) add after it was installed.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

from pmi.privacy import mask_text

_MARK = "_pmi_masking"


def mask_record(record: logging.LogRecord) -> logging.LogRecord:
    """Mask the record in place: the formatted message and any exception text."""
    try:
        message = record.getMessage()
    except (TypeError, ValueError):  # bad %-arguments: leave it to logging's own error path
        return record
    record.msg, record.args = mask_text(message), None
    if record.exc_info and not record.exc_text:
        record.exc_text = mask_text("".join(traceback.format_exception(*record.exc_info)).rstrip())
    return record


def install_masking() -> None:
    """Mask personal data in every log record of this process from now on (idempotent)."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, _MARK, False):
        return

    def masked_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return mask_record(factory(*args, **kwargs))

    setattr(masked_factory, _MARK, True)
    logging.setLogRecordFactory(masked_factory)


class MaskingFilter(logging.Filter):
    """The same masking as a handler filter, for handlers set up outside this process' code."""

    def filter(self, record: logging.LogRecord) -> bool:
        mask_record(record)
        return True
