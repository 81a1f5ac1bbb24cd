"""ORM models of cases: a complaint or an emergency, its timeline and its staff alerts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from pmi.db import Base, UTCDateTime, utcnow

Timestamp = UTCDateTime()
PENDING = "pending"  # pmi.models.OutboundStatus.PENDING (that module imports this one)


class CaseStatus:
    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    IN_PROGRESS = "in_progress"
    REFERRED = "referred"
    RESOLVED = "resolved"
    CLOSED = "closed"
    ALL = (NEW, ACKNOWLEDGED, IN_PROGRESS, REFERRED, RESOLVED, CLOSED)


class Priority:
    NORMAL = "normal"
    URGENT = "urgent"


class Case(Base):
    """A protection complaint or an emergency, routed to one mission."""

    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_mission_status", "mission_code", "status"),
        Index("ix_cases_contact", "contact_id"),
        UniqueConstraint("conversation_id", "origin_message_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(10), unique=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    # Rasa conversation id (the contact's public id): the link to the transcript. None once
    # anonymised, so that no sender id can ever match an erased worker's case.
    conversation_id: Mapped[str | None] = mapped_column(String(64))
    # The worker's message that filed it: a turn run again files nothing new.
    origin_message_id: Mapped[str | None] = mapped_column(String(64))
    priority: Mapped[str] = mapped_column(String(8), default=Priority.NORMAL)
    status: Mapped[str] = mapped_column(String(16), default=CaseStatus.NEW)
    category: Mapped[str] = mapped_column(String(32))
    country: Mapped[str | None] = mapped_column(String(64))
    city: Mapped[str | None] = mapped_column(String(120))
    employer: Mapped[str | None] = mapped_column(String(200))
    agency: Mapped[str | None] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    location: Mapped[str | None] = mapped_column(Text)
    safe_to_reply: Mapped[str | None] = mapped_column(String(8))
    # How officers may reach the worker when the chat is not safe, in her words ("none": no way).
    safe_contact: Mapped[str | None] = mapped_column(Text)
    contact_method: Mapped[str | None] = mapped_column(String(8))
    phone: Mapped[str | None] = mapped_column(String(32))
    language: Mapped[str] = mapped_column(String(8), default="id")
    mission_code: Mapped[str] = mapped_column(String(64))
    consent_version: Mapped[str | None] = mapped_column(String(32))
    consent_at: Mapped[datetime | None] = mapped_column(Timestamp)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column(Timestamp)
    last_alert_at: Mapped[datetime | None] = mapped_column(Timestamp)
    alert_count: Mapped[int] = mapped_column(Integer, default=0)
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL"), index=True
    )
    next_action: Mapped[str | None] = mapped_column(String(500))
    due_at: Mapped[datetime | None] = mapped_column(Timestamp, index=True)
    # How it ended (data/case_outcomes.yml), set when it is closed.
    outcome: Mapped[str | None] = mapped_column(String(32))
    # A domestic authority it was referred to (data/referral_bodies.yml, "bp3mi:<province>")
    # and that authority's own reference number.
    referred_to: Mapped[str | None] = mapped_column(String(64))
    referral_ref: Mapped[str | None] = mapped_column(String(64))


class CaseEvent(Base):
    """One line of a case's timeline: creation, status change, note, message, alert."""

    __tablename__ = "case_events"
    __table_args__ = (Index("ix_case_events_case", "case_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    kind: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(64), default="bot")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class StaffAlert(Base):
    """A notice to a mission's staff about a case, delivered to the console and Telegram."""

    __tablename__ = "staff_alerts"
    __table_args__ = (Index("ix_staff_alerts_status", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    mission_code: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(16))  # new_urgent | new_case | repeat | escalated
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(Timestamp)


class Digest(Base):
    """A daily digest taken for one mission and day (`pmi.digests`): the unique key makes
    "once a day" hold across app processes and restarts."""

    __tablename__ = "digests"
    __table_args__ = (UniqueConstraint("kind", "mission_code", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # "overdue"
    mission_code: Mapped[str] = mapped_column(String(64))
    day: Mapped[str] = mapped_column(String(10))  # ISO date, UTC
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
