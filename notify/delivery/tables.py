"""Delivery state: one row per (broadcast, endpoint), the provider-sized batches, one run per
broadcast.

The database, not Redis, is the record of what is left to send: every job re-reads its batch
from here, so a killed job, a lost queue or a second worker can only resume, never restart.
Other areas read these tables (analytics: `deliveries.status` 'sent' = accepted by the
provider, 'failed' = final failure with `error_code`; LINE statistics: the batches'
`aggregation_unit`).
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    and_,
    text,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column

from notify.db import Base, UTCDateTime, utcnow
from notify.models import BigId


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"  # snapshotted, not yet in a batch
    HELD = "held"  # quiet hours: waits for `not_before`
    QUEUED = "queued"  # in a batch that is queued, in flight or waiting for a retry
    SENT = "sent"  # accepted by the provider
    FAILED = "failed"  # final failure (permanent, or transient after the last attempt)
    SKIPPED = "skipped"  # not sent on purpose (endpoint withdrawn/blocked since the snapshot)
    CANCELLED = "cancelled"  # the broadcast was cancelled before this one was sent


OPEN_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.HELD, DeliveryStatus.QUEUED)
FILLFACTOR = 35  # percent of each deliveries page filled by inserts (see Delivery)


class BatchStatus(enum.StrEnum):
    QUEUED = "queued"  # waiting for a worker
    SENDING = "sending"  # claimed by a worker (lease_until says until when)
    RETRY = "retry"  # some recipients failed transiently; next try at next_attempt_at
    DONE = "done"  # every recipient has a final status
    CANCELLED = "cancelled"


ACTIVE_BATCH_STATUSES = (BatchStatus.QUEUED, BatchStatus.SENDING, BatchStatus.RETRY)


class Delivery(Base):
    __tablename__ = "deliveries"
    # A big send changes each row once more after its insert (queued → sent, adding the
    # provider id and sent_at). No index names a column that change touches, and inserts
    # leave two thirds of each page free, room for every row's larger sent version; so
    # PostgreSQL rewrites the row in place (a HOT update: no new index entries, far less
    # WAL). Measured on 200,000 rows updated a batch at a time: 5.2 s before, 1.5 s after.
    # Pages end about 60 % full of sent rows; a non-HOT update leaves as much dead space
    # behind until vacuum.
    __table_args__ = (
        Index("uq_deliveries_broadcast_endpoint", "broadcast_id", "endpoint_id", unique=True),
        Index("ix_deliveries_broadcast_channel", "broadcast_id", "channel"),
        # Rows still to plan or held (never in a batch): the planner streams them in id
        # order, completion and release checks probe them. Queries add `unbatched()`.
        Index(
            "ix_deliveries_unbatched",
            "broadcast_id",
            "id",
            postgresql_where=text("batch_id IS NULL"),
            sqlite_where=text("batch_id IS NULL"),
        ),
        Index("ix_deliveries_batch_id", "batch_id"),
        {"postgresql_with": {"fillfactor": FILLFACTOR}},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # No foreign keys here: a million-row INSERT … SELECT should not pay a check per row, and
    # delivery history outlives a resident who left (analytics counts stay true).
    broadcast_id: Mapped[int] = mapped_column(BigInteger)
    resident_id: Mapped[int] = mapped_column(BigInteger)
    endpoint_id: Mapped[int] = mapped_column(BigInteger)
    channel: Mapped[str] = mapped_column(String(8))
    ward_code: Mapped[str | None] = mapped_column(String(6))
    language: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(10), default=DeliveryStatus.PENDING)
    batch_id: Mapped[int | None] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0)
    provider_id: Mapped[str | None] = mapped_column(String(128))
    error_code: Mapped[str | None] = mapped_column(String(64))
    # 0 = first choice; n = the n-th fallback under the "preferred" policy.
    fallback_rank: Mapped[int] = mapped_column(SmallInteger, default=0)
    not_before: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


def unbatched(*statuses: DeliveryStatus) -> ColumnElement[bool]:
    """Rows in no batch yet with one of `statuses` ('pending', 'held'; never 'queued' or
    later): written so the partial index `ix_deliveries_unbatched` serves the query."""
    return and_(Delivery.batch_id.is_(None), Delivery.status.in_(statuses))


class DeliveryBatch(Base):
    """One provider call's worth of recipients (LINE ≤500 ids, FCM ~500, email ~200 per
    SMTP connection), all of one channel, language and ward (one rendered message, one LINE
    aggregation unit)."""

    __tablename__ = "delivery_batches"
    __table_args__ = (
        Index("ix_delivery_batches_broadcast_status", "broadcast_id", "status"),
        Index("ix_delivery_batches_broadcast_channel_seq", "broadcast_id", "channel", "seq"),
        # A lane's "next due batch of my channel" across broadcasts.
        Index("ix_delivery_batches_status_channel", "status", "channel"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    broadcast_id: Mapped[int] = mapped_column(ForeignKey("broadcasts.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(8))
    seq: Mapped[int] = mapped_column(Integer)
    language: Mapped[str] = mapped_column(String(8))
    ward_code: Mapped[str | None] = mapped_column(String(6))
    size: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(10), default=BatchStatus.QUEUED)
    # LINE X-Line-Retry-Key: made when the batch is created (before its first attempt) and
    # reused on every retry of the same recipient set; `retry_key_size` is that set's size
    # (the set only shrinks, so a different size means a different request body).
    retry_key: Mapped[str | None] = mapped_column(String(36))
    retry_key_size: Mapped[int | None] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    lease_token: Mapped[str | None] = mapped_column(String(32))
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    aggregation_unit: Mapped[str | None] = mapped_column(String(30))
    error_code: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class DeliveryRun(Base):
    """One per broadcast that started sending: the snapshot is taken exactly once, in parts
    by resident id (`notify.delivery.engine.take_snapshot_part`), each in one transaction."""

    __tablename__ = "delivery_runs"

    broadcast_id: Mapped[int] = mapped_column(
        ForeignKey("broadcasts.id", ondelete="CASCADE"), primary_key=True
    )
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    # LINE aggregation units: "ward" (one per broadcast and ward) or "broadcast" (one per
    # broadcast, when the month's cap of distinct unit names is near).
    unit_mode: Mapped[str] = mapped_column(String(10), default="ward")
    snapshot_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The snapshot's progress: parts taken, the last resident id they cover, and whether
    # every resident is covered (runs from before parts were complete at once).
    snapshot_parts: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="1")
    snapshot_cursor: Mapped[int | None] = mapped_column(BigInteger)
    snapshot_done: Mapped[bool] = mapped_column(Boolean, default=False, server_default=true())
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
