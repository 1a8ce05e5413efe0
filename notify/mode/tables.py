"""Tables of the mode area: synced rich menus, the mode in force, switches (their persisted
steps), LINE batch requests, per-user link snapshots, JMA telegrams and proposals."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from notify.db import Base, UTCDateTime, utcnow
from notify.models import BigId


class ModeMenu(Base):
    """Menu key → the LINE rich menu this hub made for it (the last successful sync)."""

    __tablename__ = "mode_menus"

    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    mode: Mapped[str] = mapped_column(String(8))
    rich_menu_id: Mapped[str] = mapped_column(String(64))
    digest: Mapped[str] = mapped_column(String(64))
    alias: Mapped[str | None] = mapped_column(String(32))
    synced_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ModeState(Base):
    """One row (id 1): the mode in force, since when, by whom, why, and its switch."""

    __tablename__ = "mode_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mode: Mapped[str] = mapped_column(String(8))
    since: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(64))
    actor_label: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text)
    switch_id: Mapped[int | None] = mapped_column(BigId)


class ModeSwitch(Base):
    """One switch and its steps; every step persists its state so a rerun finishes it."""

    __tablename__ = "mode_switches"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    target_mode: Mapped[str] = mapped_column(String(8))
    from_mode: Mapped[str] = mapped_column(String(8))
    reason: Mapped[str] = mapped_column(Text)
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(64))
    actor_label: Mapped[str] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(String(16), default="staff")  # staff / jma / proposal
    # pending / running / waiting / done / failed / superseded
    status: Mapped[str] = mapped_column(String(12), default="pending", index=True)
    steps: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    relink: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    runs: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    requested_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    default_set_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    relink_done_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class LineBatchRequest(Base):
    """Every richmenu/batch request this hub sent (LINE allows 3 an hour per channel)."""

    __tablename__ = "mode_line_batches"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    request_id: Mapped[str | None] = mapped_column(String(64))
    resume_key: Mapped[str] = mapped_column(String(100), index=True)
    purpose: Mapped[str] = mapped_column(String(16))  # switch / sync
    switch_id: Mapped[int | None] = mapped_column(BigId)
    operations: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    phase: Mapped[str] = mapped_column(String(12), default="sending")  # + ongoing/succeeded/failed
    sent_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class LinkSnapshot(Base):
    """Which per-user menu a user had before a switch (when menus alone cannot tell)."""

    __tablename__ = "mode_link_snapshots"

    switch_id: Mapped[int] = mapped_column(
        ForeignKey("mode_switches.id", ondelete="CASCADE"), primary_key=True
    )
    line_user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    menu_key: Mapped[str] = mapped_column(String(32))


class ModeProposal(Base):
    """A switch (or return to normal) proposed to disaster staff, e.g. by a JMA telegram."""

    __tablename__ = "mode_proposals"
    __table_args__ = (Index("ix_mode_proposals_status_event", "status", "event_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # switch / return_to_normal
    # pending / accepted / dismissed / withdrawn / superseded
    status: Mapped[str] = mapped_column(String(12), default="pending")
    source: Mapped[str] = mapped_column(String(16), default="jma")
    event_key: Mapped[str] = mapped_column(String(200))
    event_id: Mapped[str | None] = mapped_column(String(64))
    reason_ja: Mapped[str] = mapped_column(Text)
    reason_en: Mapped[str] = mapped_column(Text)
    ward_codes: Mapped[list[str]] = mapped_column(JSON, default=list)
    template_key: Mapped[str | None] = mapped_column(String(64))
    template_params: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    rule_keys: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(Text)
    switch_id: Mapped[int | None] = mapped_column(BigId)
    broadcast_id: Mapped[int | None] = mapped_column(BigId)


class JmaTelegramRecord(Base):
    """A telegram the hub accepted and what it did with it (the same bytes act once)."""

    __tablename__ = "mode_jma_telegrams"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    source: Mapped[str] = mapped_column(String(8))  # http / feed / file
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    data_type: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(8))
    info_type: Mapped[str] = mapped_column(String(8))
    event_key: Mapped[str] = mapped_column(String(200), index=True)
    event_id: Mapped[str | None] = mapped_column(String(64))
    report_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    action: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(32))  # what the hub did (may differ: see intake)
    reason_ja: Mapped[str] = mapped_column(Text)
    reason_en: Mapped[str] = mapped_column(Text)
    ward_codes: Mapped[list[str]] = mapped_column(JSON, default=list)
    proposal_id: Mapped[int | None] = mapped_column(BigId)
    switch_id: Mapped[int | None] = mapped_column(BigId)
    broadcast_id: Mapped[int | None] = mapped_column(BigId)
