"""Foundation tables: the resident registry, staff, audit log and broadcasts.

Areas that need more tables keep them in their own module (`notify/<area>/tables.py`) on the
same `Base`; `notify/tables.py` imports them all so migrations see the whole schema.

Minimum personal data: no names, addresses or birthdays. A child is a birth year-month only;
ages are computed on the send date.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from notify.db import Base, UTCDateTime, utcnow

# BigInteger primary keys that still autoincrement on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class ResidentStatus(enum.StrEnum):
    ACTIVE = "active"
    LEFT = "left"  # left the service; data kept only as long as the law requires


class Consent(enum.StrEnum):
    PENDING = "pending"  # e.g. email not yet confirmed (double opt-in)
    GRANTED = "granted"
    WITHDRAWN = "withdrawn"


class EndpointStatus(enum.StrEnum):
    ACTIVE = "active"
    BLOCKED = "blocked"  # LINE unfollow / block
    PRUNED = "pruned"  # provider said the address is dead (unregistered token, hard bounce)


class Role(enum.StrEnum):
    PR = "pr"  # 広報: compose, submit, schedule
    APPROVER = "approver"  # 承認者
    DISASTER = "disaster"  # 防災: mode switch, emergency broadcasts
    ANALYST = "analyst"  # 分析: statistics
    ADMIN = "admin"  # staff accounts; passes every role check


class Resident(Base):
    __tablename__ = "residents"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True)
    ward_code: Mapped[str | None] = mapped_column(String(6), index=True)
    language: Mapped[str] = mapped_column(String(8), default="ja", index=True)
    # Quiet hours as minutes after local midnight; both None = no quiet hours.
    quiet_start_min: Mapped[int | None] = mapped_column(SmallInteger)
    quiet_end_min: Mapped[int | None] = mapped_column(SmallInteger)
    preferred_channel: Mapped[str | None] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(8), default=ResidentStatus.ACTIVE, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    children: Mapped[list[Child]] = relationship(
        back_populates="resident", cascade="all, delete-orphan", passive_deletes=True
    )
    topics: Mapped[list[ResidentTopic]] = relationship(
        back_populates="resident", cascade="all, delete-orphan", passive_deletes=True
    )
    endpoints: Mapped[list[Endpoint]] = relationship(
        back_populates="resident", cascade="all, delete-orphan", passive_deletes=True
    )


class Child(Base):
    """A child as birth year-month only. `birth_month_index` = year*12 + (month-1), indexed,
    so 'aged 3y0m–5y11m on the send date' becomes an index range scan."""

    __tablename__ = "children"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    resident_id: Mapped[int] = mapped_column(
        ForeignKey("residents.id", ondelete="CASCADE"), index=True
    )
    birth_year: Mapped[int] = mapped_column(SmallInteger)
    birth_month: Mapped[int] = mapped_column(SmallInteger)
    birth_month_index: Mapped[int] = mapped_column(Integer, index=True)

    resident: Mapped[Resident] = relationship(back_populates="children")


class ResidentTopic(Base):
    __tablename__ = "resident_topics"
    __table_args__ = (Index("ix_resident_topics_topic", "topic", "resident_id"),)

    resident_id: Mapped[int] = mapped_column(
        ForeignKey("residents.id", ondelete="CASCADE"), primary_key=True
    )
    topic: Mapped[str] = mapped_column(String(32), primary_key=True)

    resident: Mapped[Resident] = relationship(back_populates="topics")


class Endpoint(Base):
    """One way to reach a resident: a LINE user id, an app device (FCM token) or an email."""

    __tablename__ = "endpoints"
    __table_args__ = (
        UniqueConstraint("channel", "address", name="uq_endpoints_channel_address"),
        Index("ix_endpoints_resident_channel", "resident_id", "channel"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(8))  # channels.base.ChannelName
    address: Mapped[str] = mapped_column(String(512))
    platform: Mapped[str | None] = mapped_column(String(16))  # FCM: android / ios / web
    consent: Mapped[str] = mapped_column(String(10), default=Consent.PENDING)
    status: Mapped[str] = mapped_column(String(8), default=EndpointStatus.ACTIVE)
    # App devices authenticate with a secret issued at registration (only its hash is kept).
    secret_hash: Mapped[str | None] = mapped_column(String(128))
    # Opaque per-endpoint token for short unsubscribe / tracking URLs (never the address).
    token: Mapped[str | None] = mapped_column(String(32), unique=True)
    consent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    withdrawn_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    resident: Mapped[Resident] = relationship(back_populates="endpoints")


class WebhookEvent(Base):
    """LINE webhookEventId seen, for de-duplicating redeliveries."""

    __tablename__ = "webhook_events"

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class StaffUser(Base):
    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    login: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    password_hash: Mapped[str | None] = mapped_column(String(200))
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class StaffToken(Base):
    """API tokens; only a SHA-256 of the token is stored."""

    __tablename__ = "staff_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(64), default="api")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class AuditEntry(Base):
    """Who did what, when: every state change by staff, residents' data requests, the system."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_type: Mapped[str] = mapped_column(String(16))  # staff / resident / system
    actor_id: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Broadcast(Base):
    """One message composed once, aimed at a segment, sent on several channels.

    `version` grows on every reschedule / cancel; scheduled jobs carry it in their job id and
    refuse to run when it no longer matches, so a stale job can never send.
    """

    __tablename__ = "broadcasts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="draft", index=True)
    priority: Mapped[str] = mapped_column(String(10), default="normal")  # normal / emergency
    topic: Mapped[str | None] = mapped_column(String(32))
    # {"ja": {"line": {...}, "push": {...}, "email": {...}}, "en": {...}}: staff-written jinja2
    content: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    segment: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # segments rule tree
    channels: Mapped[list[str]] = mapped_column(JSON, default=list)
    channel_policy: Mapped[str] = mapped_column(String(10), default="all")  # all / preferred
    send_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    submitted_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    approved_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    review_comment: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    submitted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    approved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
