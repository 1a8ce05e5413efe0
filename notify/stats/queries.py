"""The SQL behind the statistics: grouped counts, never rows per recipient in memory.

`deliveries` belongs to the delivery engine; it is referenced here as a lightweight table
clause with only the columns statistics read (broadcast_id, endpoint_id, channel, ward_code,
language, status, error_code, sent_at), so this module does not depend on the engine's code.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Literal

from sqlalchemy import String, and_, cast, column, distinct, func, null, or_, select, table
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from notify.db import UTCDateTime
from notify.stats.tables import EmailBounce, LineAggregationUnit, OpenEvent, OpenKind

deliveries = table(
    "deliveries",
    column("broadcast_id"),
    column("endpoint_id"),
    column("channel", String),
    column("ward_code", String),
    column("language", String),
    column("status", String),
    column("error_code", String),
    column("sent_at", UTCDateTime),
)

Dimension = Literal["ward_code", "language"] | None
PENDING = ("pending", "held", "queued")
NOT_SENT = ("skipped", "cancelled")
COUNT_NAMES = ("targeted", "sent", "failed", "pending", "skipped")
Key = tuple[int, str, str | None]  # (broadcast id, channel, ward / language or None)


def _dim(dimension: Dimension) -> ColumnElement[Any]:
    return deliveries.c[dimension] if dimension else cast(null(), String)


async def delivery_counts(
    session: AsyncSession, broadcast_ids: Sequence[int], dimension: Dimension = None
) -> dict[Key, dict[str, int]]:
    d = deliveries.c
    dim = _dim(dimension).label("dim")
    query = (
        select(
            d.broadcast_id,
            d.channel,
            dim,
            func.count().label("targeted"),
            func.count().filter(d.status == "sent").label("sent"),
            func.count().filter(d.status == "failed").label("failed"),
            func.count().filter(d.status.in_(PENDING)).label("pending"),
            func.count().filter(d.status.in_(NOT_SENT)).label("skipped"),
        )
        .where(d.broadcast_id.in_(broadcast_ids))
        .group_by(d.broadcast_id, d.channel, dim)
    )
    out: dict[Key, dict[str, int]] = {}
    for row in await session.execute(query):
        out[(int(row.broadcast_id), row.channel, row.dim)] = {
            name: int(getattr(row, name)) for name in COUNT_NAMES
        }
    return out


def _sent_delivery_join() -> ColumnElement[bool]:
    """An open counts only for a recipient the broadcast was sent to on that channel, and
    (email) whose message did not bounce: opens never exceed delivered."""
    d = deliveries.c
    bounced = (
        select(EmailBounce.id)
        .where(
            EmailBounce.broadcast_id == OpenEvent.broadcast_id,
            EmailBounce.endpoint_id == OpenEvent.endpoint_id,
        )
        .exists()
    )
    return and_(
        d.broadcast_id == OpenEvent.broadcast_id,
        d.endpoint_id == OpenEvent.endpoint_id,
        d.channel == OpenEvent.channel,
        d.status == "sent",
        or_(OpenEvent.channel != "email", ~bounced),
    )


async def open_counts(
    session: AsyncSession, broadcast_ids: Sequence[int], dimension: Dimension = None
) -> dict[Key, dict[str, int]]:
    """Unique opens per channel; only recipients the hub actually sent the broadcast to.

    `opens` = endpoints with a person's open or a click (a click implies an open);
    `proxy_opens` = endpoints whose pixel a privacy proxy fetched (reported, not an open).
    """
    dim = _dim(dimension).label("dim")
    endpoint = OpenEvent.endpoint_id
    query = (
        select(
            OpenEvent.broadcast_id,
            OpenEvent.channel,
            dim,
            func.count(distinct(endpoint))
            .filter(OpenEvent.kind.in_((OpenKind.OPEN, OpenKind.CLICK)))
            .label("opens"),
            func.count(distinct(endpoint)).filter(OpenEvent.kind == OpenKind.CLICK).label("clicks"),
            func.count(distinct(endpoint))
            .filter(OpenEvent.kind == OpenKind.PROXY_OPEN)
            .label("proxy_opens"),
            func.count(distinct(endpoint)).label("opens_incl_proxy"),
        )
        .join(deliveries, _sent_delivery_join())
        .where(OpenEvent.broadcast_id.in_(broadcast_ids))
        .group_by(OpenEvent.broadcast_id, OpenEvent.channel, dim)
    )
    out: dict[Key, dict[str, int]] = {}
    for row in await session.execute(query):
        out[(int(row.broadcast_id), row.channel, row.dim)] = {
            name: int(getattr(row, name))
            for name in ("opens", "clicks", "proxy_opens", "opens_incl_proxy")
        }
    return out


async def bounce_counts(
    session: AsyncSession, broadcast_ids: Sequence[int], dimension: Dimension = None
) -> dict[Key, int]:
    d = deliveries.c
    dim = _dim(dimension).label("dim")
    query = (
        select(EmailBounce.broadcast_id, dim, func.count(distinct(EmailBounce.endpoint_id)))
        .join(
            deliveries,
            and_(
                d.broadcast_id == EmailBounce.broadcast_id,
                d.endpoint_id == EmailBounce.endpoint_id,
                d.channel == "email",
                d.status == "sent",
            ),
        )
        .where(EmailBounce.broadcast_id.in_(broadcast_ids))
        .group_by(EmailBounce.broadcast_id, dim)
    )
    return {
        (int(b), "email", dim_value): int(n) for b, dim_value, n in await session.execute(query)
    }


async def line_units(
    session: AsyncSession, broadcast_ids: Sequence[int]
) -> dict[int, list[LineAggregationUnit]]:
    query = select(LineAggregationUnit).where(LineAggregationUnit.broadcast_id.in_(broadcast_ids))
    out: dict[int, list[LineAggregationUnit]] = {}
    for unit in (await session.execute(query)).scalars():
        out.setdefault(unit.broadcast_id, []).append(unit)
    return out


async def failure_reasons(
    session: AsyncSession, broadcast_id: int
) -> list[tuple[str, str | None, int]]:
    """(channel, error code, count) of the final failures of one broadcast."""
    d = deliveries.c
    query = (
        select(d.channel, d.error_code, func.count())
        .where(d.broadcast_id == broadcast_id, d.status == "failed")
        .group_by(d.channel, d.error_code)
        .order_by(d.channel, func.count().desc())
    )
    return [(ch, code, int(n)) for ch, code, n in await session.execute(query)]


# --- per-day series ---------------------------------------------------------------------


def local_day(session: AsyncSession, value: Any, tz: str, utc_offset: dt.timedelta) -> Any:
    """The calendar day of a UTC timestamp in the city's zone, as an SQL expression.

    SQLite has no zone database; the city's zones (Asia/Tokyo) have no daylight saving, so a
    fixed offset is exact there.
    """
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone(tz, value), "YYYY-MM-DD")
    hours = int(utc_offset.total_seconds() // 60)
    return func.strftime("%Y-%m-%d", value, f"{hours:+d} minutes")


async def daily_sent(
    session: AsyncSession, broadcast_id: int, tz: str, offset: dt.timedelta
) -> dict[tuple[str, str], int]:
    d = deliveries.c
    day = local_day(session, d.sent_at, tz, offset).label("day")
    query = (
        select(d.channel, day, func.count())
        .where(d.broadcast_id == broadcast_id, d.status == "sent", d.sent_at.is_not(None))
        .group_by(d.channel, day)
    )
    return {
        (channel, str(day_value)): int(n) for channel, day_value, n in await session.execute(query)
    }


async def daily_opens(
    session: AsyncSession, broadcast_id: int, tz: str, offset: dt.timedelta
) -> dict[tuple[str, str], int]:
    """New unique opens per day: each endpoint counted on the day of its first open/click."""
    first = (
        select(
            OpenEvent.channel,
            OpenEvent.endpoint_id,
            func.min(OpenEvent.first_at).label("first_at"),
        )
        .join(deliveries, _sent_delivery_join())
        .where(
            OpenEvent.broadcast_id == broadcast_id,
            OpenEvent.kind.in_((OpenKind.OPEN, OpenKind.CLICK)),
        )
        .group_by(OpenEvent.channel, OpenEvent.endpoint_id)
        .subquery()
    )
    day = local_day(session, first.c.first_at, tz, offset).label("day")
    query = select(first.c.channel, day, func.count()).group_by(first.c.channel, day)
    return {
        (channel, str(day_value)): int(n) for channel, day_value, n in await session.execute(query)
    }
