"""What the fuzz tests (test_fuzz.py) send: hostile text and JSON, bodies, webhook updates
and form bodies, and how many examples each test tries."""

from __future__ import annotations

import itertools
import json
import os
from typing import Any
from urllib.parse import quote

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "default")
FUZZ = settings(
    max_examples=400 if PROFILE == "faults" else 25,
    deadline=None,
    derandomize=PROFILE != "faults",  # make test: the same examples every run
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
update_ids = itertools.count(10_000)
# Field names the console's forms use (and random ones): every POST form is fuzzed with them.
FORM_FIELDS = [
    "text",
    "status",
    "csrf",
    "username",
    "password",
    "role",
    "mission",
    "intent",
    "q",
    "country",
    "language",
    "title",
    "body",
    "reason",
    "confirm",
    "action",
    "next",
    "active",
]
# Query parameters the console's pages read.
QUERY_KEYS = [
    "q",
    "status",
    "priority",
    "mission",
    "category",
    "country",
    "from",
    "to",
    "after",
    "channel",
    "language",
    "intent",
    "low",
    "page",
]

NASTY = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "'; DROP TABLE cases; --",
    "' OR '1'='1",
    "%' OR 1=1 --",
    "\\x00",
    "\x00",
    "a\x00b",
    "\ud800",
    "\udfff lone",
    "\u202eRTL override",
    "zero\u200bwidth\u200d\ufeff",
    "\x1b[31mred",
    "\r\n\r\nHTTP/1.1 200 OK",
    "𝕳𝖊𝖑𝖑𝖔 🇮🇩 👩🏽‍🍳",
    "ـ\u0300\u0301\u0302" * 50,
    "{{7*7}}${7*7}<%= 7*7 %>",
    "../../../../etc/passwd",
    "PMI-AAAAAA",
    "/hapus",
    "/confirm_delete",
    "x" * 5000,
]
unicode_text = st.text(
    st.characters(codec=None, categories=None, exclude_categories=()), max_size=200
)
nasty_text = st.one_of(
    st.sampled_from(NASTY),
    unicode_text,
    st.lists(st.sampled_from(NASTY) | unicode_text, max_size=4).map("".join),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    nasty_text,
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(nasty_text, inner, max_size=4),
    max_leaves=12,
)


def as_json(value: Any) -> bytes:
    """JSON text; lone surrogates become \\udXXX escapes, as a hostile client may send."""
    return json.dumps(value, ensure_ascii=True, allow_nan=True).encode()


bodies = st.one_of(st.binary(max_size=3000), json_values.map(as_json))


def telegram_update(text_value: Any, chat_id: Any) -> dict[str, Any]:
    return {
        "update_id": next(update_ids),
        "message": {
            "message_id": 1,
            "date": 0,
            "chat": {"id": chat_id, "type": "private"},
            "from": {"id": 5, "is_bot": False, "first_name": text_value},
            "text": text_value,
        },
    }


def wa_message(text_value: Any, sender: Any) -> dict[str, Any]:
    message = {"from": sender, "id": f"wamid.{next(update_ids)}", "timestamp": "0"}
    message.update({"type": "text", "text": {"body": text_value}})
    value = {
        "messaging_product": "whatsapp",
        "contacts": [{"wa_id": sender}],
        "messages": [message],
    }
    return {"object": "whatsapp_business_account", "entry": [{"changes": [{"value": value}]}]}


def form_body(fields: dict[str, str]) -> bytes:
    return "&".join(
        f"{quote(k.encode('utf-8', 'surrogatepass'))}={quote(v.encode('utf-8', 'surrogatepass'))}"
        for k, v in fields.items()
    ).encode()
