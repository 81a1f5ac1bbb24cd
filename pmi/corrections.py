"""Intent corrections: operators mark what a worker's message meant; exported for NLU review.

The export is Rasa 3 NLU training data, written for a person to review before anything is
copied into `rasa_project/data/nlu/` (which would retrain the model). Phone, passport and
e-mail numbers are masked when a message is marked, so the copy never holds them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

import yaml
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pmi.db import utcnow
from pmi.models import InboundMessage, IntentCorrection, StaffUser

FALLBACK_INTENT = "nlu_fallback"  # Rasa's FallbackClassifier
MAX_EXAMPLE = 500

# Placeholders keep the sentence shape without the value; no brackets, which Rasa's
# training data format would read as entity annotations.
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Indonesian passports: one or two letters and 6-8 digits (A1234567, "B 1234567").
_PASSPORT = re.compile(r"\b[A-Za-z]{1,2}\s?\d{6,8}\b")
# A run of at least 7 digits, allowing +, spaces, dots, dashes and brackets between them.
_PHONE = re.compile(r"\+?\(?\d(?:[\s.()-]*\d){6,}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


class CorrectionError(ValueError):
    """A correction was refused; the message says why."""


def mask(text: str) -> str:
    """The text with e-mail addresses, passport and phone numbers replaced by placeholders."""
    text = _EMAIL.sub("EMAIL", text)
    text = _PASSPORT.sub("PASPOR", text)
    return _PHONE.sub("NOMOR", text)


def load_intents(domain_dir: Path) -> tuple[str, ...]:
    """The intents declared in the Rasa domain files, in their order, without duplicates."""
    intents: list[str] = []
    for path in sorted(domain_dir.glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for item in data.get("intents") or []:
            # An intent is a name, or a one-key mapping {name: {use_entities: ...}}.
            name = next(iter(item)) if isinstance(item, dict) else item
            if isinstance(name, str) and name not in intents:
                intents.append(name)
    return tuple(intents)


async def mark(
    s: AsyncSession,
    message: InboundMessage,
    intent: str,
    user: StaffUser,
    intents: Iterable[str],
) -> IntentCorrection:
    """Record (or replace) the right intent of one worker's message."""
    if intent not in intents:
        raise CorrectionError(f"unknown intent {intent!r}")
    correction = await s.scalar(
        select(IntentCorrection).where(IntentCorrection.inbound_id == message.id)
    )
    if correction is None:
        correction = IntentCorrection(inbound_id=message.id)
        s.add(correction)
    correction.intent = intent
    correction.predicted_intent = message.intent
    correction.text = mask(message.text)[:MAX_EXAMPLE]
    correction.user_id = user.id
    correction.at = utcnow()
    await s.flush()
    return correction


async def corrections_by_message(s: AsyncSession, inbound_ids: Sequence[int]) -> dict[int, str]:
    """The corrected intent of each of these messages that has one."""
    if not inbound_ids:
        return {}
    rows = await s.execute(
        select(IntentCorrection.inbound_id, IntentCorrection.intent).where(
            IntentCorrection.inbound_id.in_(inbound_ids)
        )
    )
    return {inbound_id: intent for inbound_id, intent in rows.all()}


async def corrections(s: AsyncSession, since: datetime | None = None) -> Sequence[IntentCorrection]:
    query = select(IntentCorrection).order_by(IntentCorrection.intent, IntentCorrection.id)
    if since is not None:
        query = query.where(IntentCorrection.at >= since)
    return (await s.scalars(query)).all()


class _Block(str):
    """A string dumped as a YAML literal block (`|`), as Rasa writes `examples`."""


def _block(dumper: yaml.SafeDumper, value: _Block) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", str(value), style="|")


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Block, _block)


def example_line(text: str) -> str:
    """One training example on one line, masked (again: older rows may predate a rule)."""
    return " ".join(_CONTROL.sub(" ", mask(text)).split())[:MAX_EXAMPLE]


def to_nlu_yaml(rows: Iterable[IntentCorrection], generated: datetime) -> str:
    """Rasa 3 NLU training data (version "3.1"), one entry per intent, examples de-duplicated."""
    examples: dict[str, list[str]] = {}
    for row in rows:
        line = example_line(row.text)
        if line and line not in examples.setdefault(row.intent, []):
            examples[row.intent].append(line)
    nlu = [
        {"intent": intent, "examples": _Block("".join(f"- {e}\n" for e in lines))}
        for intent, lines in sorted(examples.items())
        if lines
    ]
    header = (
        "# Intent corrections from the staff console, "
        f"{generated.strftime('%Y-%m-%d %H:%M UTC')}.\n"
        "# Review every example before copying it into rasa_project/data/nlu/.\n"
    )
    body = yaml.dump(
        {"version": "3.1", "nlu": nlu}, Dumper=_Dumper, allow_unicode=True, sort_keys=False
    )
    return header + body
