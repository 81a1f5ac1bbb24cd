"""ORM models of the app database."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

# Cases and their timeline (on the same metadata), also importable from here.
from pmi.case_models import Case, CaseEvent, CaseStatus, Digest, Priority, StaffAlert  # noqa: F401
from pmi.db import Base, UTCDateTime, utcnow

# The console login's tables (on the same metadata), also importable from here.
from pmi.login_models import LoginThrottle, StaffLoginChallenge, StaffRecoveryCode  # noqa: F401

Timestamp = UTCDateTime()


def new_public_id() -> str:
    """Opaque id used as the Rasa sender id, so Rasa never sees phone numbers or chat ids."""
    return secrets.token_hex(16)


class Contact(Base):
    """A worker on one channel (a Telegram chat, a WhatsApp number, a web chat sender)."""

    __tablename__ = "contacts"
    __table_args__ = (UniqueConstraint("channel", "channel_user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_public_id)
    channel: Mapped[str] = mapped_column(String(16))
    channel_user_id: Mapped[str] = mapped_column(String(128))
    language: Mapped[str | None] = mapped_column(String(8))
    language_chosen: Mapped[bool] = mapped_column(default=False)
    handoff: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    last_inbound_at: Mapped[datetime | None] = mapped_column(Timestamp)
    # Set when the worker said it is not safe to send her messages (someone may read her
    # phone): the outbox then holds everything she did not just ask for (`pmi.safety`).
    unsafe_since: Mapped[datetime | None] = mapped_column(Timestamp)
    # A question the app asked and waits for a typed answer to ("delete": /hapus was asked).
    pending_confirm: Mapped[str | None] = mapped_column(String(16))
    pending_confirm_at: Mapped[datetime | None] = mapped_column(Timestamp)
    # The worker erased her data: the row (her channel id) goes once the confirmation is
    # delivered (`pmi.privacy.finish_erasure`), or at the next retention round.
    erased_at: Mapped[datetime | None] = mapped_column(Timestamp)


class InboundStatus:
    PENDING = "pending"
    DONE = "done"
    HANDOFF = "handoff"  # read by a person in the console, not by the bot
    FAILED = "failed"  # its turn kept failing (`pmi.failed_turns`); a person answers it


class InboundMessage(Base):
    """A message a worker sent, stored before it is acknowledged; unique per channel id."""

    __tablename__ = "inbound_messages"
    __table_args__ = (
        UniqueConstraint("channel", "external_id"),
        Index("ix_inbound_messages_contact_status", "contact_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(128))
    text: Mapped[str] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), default=InboundStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # After a failed turn: not retried before this time; what failed (for the staff).
    next_attempt_at: Mapped[datetime | None] = mapped_column(Timestamp)
    last_error: Mapped[str | None] = mapped_column(String(255))
    received_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(Timestamp)
    # What Rasa understood (for transcript search, low-confidence review and corrections).
    intent: Mapped[str | None] = mapped_column(String(64))
    confidence: Mapped[float | None] = mapped_column(Float)


class Media(Base):
    """A photo, document or voice note a worker sent; the bytes live in the media store.

    Visible to staff exactly as the case it is attached to (or, without a case, to those
    who may read transcripts); `storage_key` is a random name, never the worker's.
    """

    __tablename__ = "media"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    inbound_id: Mapped[int] = mapped_column(
        ForeignKey("inbound_messages.id", ondelete="CASCADE"), unique=True
    )
    case_id: Mapped[int | None] = mapped_column(
        ForeignKey("cases.id", ondelete="SET NULL"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))  # photo | document | voice | video
    mime_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int | None] = mapped_column(Integer)
    storage_key: Mapped[str | None] = mapped_column(String(64))  # None until downloaded
    sha256: Mapped[str | None] = mapped_column(String(64))
    provider_ref: Mapped[str] = mapped_column(String(255))  # file_id / media id to fetch
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    fetch_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_fetch_at: Mapped[datetime | None] = mapped_column(Timestamp)
    fetch_error: Mapped[str | None] = mapped_column(String(255))  # set when it was given up


class OutboundStatus:
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    HELD = "held"  # not safe to send to this chat now (`pmi.safety`); never claimed


class OutboundMessage(Base):
    """A reply waiting in the outbox or already delivered."""

    __tablename__ = "outbound_messages"
    __table_args__ = (Index("ix_outbound_messages_contact_status", "contact_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    inbound_id: Mapped[int | None] = mapped_column(
        ForeignKey("inbound_messages.id", ondelete="SET NULL")
    )
    kind: Mapped[str] = mapped_column(String(16), default="reply")
    text: Mapped[str] = mapped_column(Text)
    buttons: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default=OutboundStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(Timestamp)
    next_attempt_at: Mapped[datetime | None] = mapped_column(Timestamp)
    last_error: Mapped[str | None] = mapped_column(String(255))
    # The provider's id of the sent message (WhatsApp wamid), for its status callbacks.
    external_id: Mapped[str | None] = mapped_column(String(128), index=True)
    # Parts of a long reply the channel already accepted: a retry sends only the rest.
    parts_sent: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    delivered_at: Mapped[datetime | None] = mapped_column(Timestamp)
    read_at: Mapped[datetime | None] = mapped_column(Timestamp)


class AgencyImport(Base):
    """One import of the official P3MI registry (the date the bot quotes)."""

    __tablename__ = "agency_imports"

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(255))
    row_count: Mapped[int] = mapped_column(Integer)
    imported_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class Agency(Base):
    """A licensed placement company (P3MI) from the latest registry import."""

    __tablename__ = "agencies"
    __table_args__ = (Index("ix_agencies_match_key", "match_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("agency_imports.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    match_key: Mapped[str] = mapped_column(String(255))
    licence: Mapped[str | None] = mapped_column(String(120))
    region: Mapped[str | None] = mapped_column(String(120))


class Role:
    OPERATOR = "operator"  # hotline: all cases and transcripts
    MISSION = "mission"  # embassy staff: only their mission's cases
    ADMIN = "admin"  # users, missions, audit log
    ALL = (OPERATOR, MISSION, ADMIN)


class StaffUser(Base):
    """A console account. Passwords are stored as argon2id hashes only."""

    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    mission_code: Mapped[str | None] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    # Two-factor authentication (`pmi.twofactor`): the TOTP secret, encrypted with the
    # console key; None until the user has confirmed an authenticator app.
    totp_secret: Mapped[str | None] = mapped_column(String(255))
    totp_enabled_at: Mapped[datetime | None] = mapped_column(Timestamp)
    totp_last_step: Mapped[int | None] = mapped_column(Integer)  # a used code is not taken again


class StaffSession(Base):
    """A console login; only a hash of the cookie's token is stored."""

    __tablename__ = "staff_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class AuditEntry(Base):
    """Who viewed, exported or changed what, and denied attempts."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(32))
    target: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class IntentCorrection(Base):
    """An operator's verdict on what a worker's message meant, for NLU training review.

    `text` is a copy with phone and passport numbers masked when it was marked; the row
    goes when the message goes (CASCADE), so a worker's erasure also removes it.
    """

    __tablename__ = "intent_corrections"

    id: Mapped[int] = mapped_column(primary_key=True)
    inbound_id: Mapped[int] = mapped_column(
        ForeignKey("inbound_messages.id", ondelete="CASCADE"), unique=True
    )
    intent: Mapped[str] = mapped_column(String(64))
    predicted_intent: Mapped[str | None] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id", ondelete="SET NULL"))
    at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class AnnouncementSubscription(Base):
    """A worker who asked for announcements (job fairs, scam warnings, new rules).

    Created only by the worker's own command and deleted by their stop word.
    """

    __tablename__ = "announcement_subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), unique=True
    )
    country: Mapped[str | None] = mapped_column(String(2))  # destination, for targeting
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class AnnouncementStatus:
    DRAFT = "draft"
    SENT = "sent"


class Announcement(Base):
    """A message staff send to subscribed workers, per language, filtered by country/language."""

    __tablename__ = "announcements"

    id: Mapped[int] = mapped_column(primary_key=True)
    texts: Mapped[dict[str, str]] = mapped_column(JSON)  # language -> text; "id" always set
    country: Mapped[str | None] = mapped_column(String(2))  # None: every subscriber
    language: Mapped[str | None] = mapped_column(String(8))  # None: every language
    status: Mapped[str] = mapped_column(String(8), default=AnnouncementStatus.DRAFT)
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    sent_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id", ondelete="SET NULL"))
    sent_at: Mapped[datetime | None] = mapped_column(Timestamp)
    recipients: Mapped[int] = mapped_column(Integer, default=0)


class ErasureRequest(Base):
    """A conversation to delete from Rasa's tracker store, retried until Rasa confirms it.

    Holds only the (random) conversation id; the row itself is deleted once done.
    """

    __tablename__ = "erasure_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(Timestamp)
    last_error: Mapped[str | None] = mapped_column(String(255))
