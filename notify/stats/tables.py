"""Tables of the stats area: opens, bounces, and what LINE's insight API told us.

Delivery outcomes live in the delivery engine's `deliveries` table; these tables hold only
what happens after a message left the hub. Endpoint ids are kept without a foreign key so a
resident who leaves (and whose endpoints are deleted) does not rewrite past statistics.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import BigInteger, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from notify.db import Base, UTCDateTime, utcnow
from notify.models import BigId


class OpenKind(enum.StrEnum):
    OPEN = "open"  # a person opened it (app report, email pixel from a mail client)
    PROXY_OPEN = "proxy_open"  # a mail privacy proxy fetched the pixel (Apple MPP, Google)
    CLICK = "click"  # a tracked email link was followed (implies an open)


class OpenEvent(Base):
    """The first time an endpoint opened / clicked a broadcast on a channel (de-duplicated)."""

    __tablename__ = "stats_opens"
    __table_args__ = (
        UniqueConstraint(
            "broadcast_id", "endpoint_id", "channel", "kind", name="uq_stats_opens_event"
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # The unique constraint's leading column serves lookups by broadcast.
    broadcast_id: Mapped[int] = mapped_column(ForeignKey("broadcasts.id", ondelete="CASCADE"))
    endpoint_id: Mapped[int] = mapped_column(BigInteger)
    channel: Mapped[str] = mapped_column(String(8))
    kind: Mapped[str] = mapped_column(String(12))
    first_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class EmailBounce(Base):
    """A message the SMTP server accepted but that bounced later (DSN)."""

    __tablename__ = "stats_email_bounces"
    __table_args__ = (
        UniqueConstraint("broadcast_id", "endpoint_id", name="uq_stats_email_bounces_pair"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    broadcast_id: Mapped[int] = mapped_column(ForeignKey("broadcasts.id", ondelete="CASCADE"))
    endpoint_id: Mapped[int] = mapped_column(BigInteger)
    permanent: Mapped[bool] = mapped_column(default=True)
    bounced_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class LineAggregationUnit(Base):
    """A custom aggregation unit name given to LINE at send time, and its latest statistics.

    `unique_impression` / `unique_click` are None while unknown: never polled yet, or withheld
    by LINE (fewer than 20 users). `withheld` tells the two apart.
    """

    __tablename__ = "stats_line_units"

    name: Mapped[str] = mapped_column(String(30), primary_key=True)
    broadcast_id: Mapped[int] = mapped_column(
        ForeignKey("broadcasts.id", ondelete="CASCADE"), index=True
    )
    ward_code: Mapped[str | None] = mapped_column(String(6))  # None: the whole broadcast
    month: Mapped[str] = mapped_column(String(6))  # JST yyyymm the name counts against
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    polled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
    polls: Mapped[int] = mapped_column(Integer, default=0)
    unique_impression: Mapped[int | None] = mapped_column(BigInteger)
    unique_click: Mapped[int | None] = mapped_column(BigInteger)
    withheld: Mapped[bool] = mapped_column(default=False)


class LineFollowerStat(Base):
    """LINE's own follower statistics for one JST day (`/v2/bot/insight/followers`)."""

    __tablename__ = "stats_line_followers"

    day: Mapped[dt.date] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(String(16))  # ready / unready / out_of_service
    followers: Mapped[int | None] = mapped_column(BigInteger)
    targeted_reaches: Mapped[int | None] = mapped_column(BigInteger)
    blocks: Mapped[int | None] = mapped_column(BigInteger)
    fetched_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
