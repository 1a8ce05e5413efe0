"""Statistics for the API and the CSV: which broadcasts, and everything about one."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from notify.city import CityConfig
from notify.models import Broadcast
from notify.stats import queries
from notify.stats.report import DEFINITIONS, channel_figures, combined, sent_at_of
from notify.stats.schemas import BroadcastStats, BroadcastSummary, DayPoint, FailureCount


def city_zone(city: CityConfig) -> ZoneInfo:
    return ZoneInfo(city.city.timezone)


def _offset(city: CityConfig) -> dt.timedelta:
    return dt.datetime.now(city_zone(city)).utcoffset() or dt.timedelta()


async def summaries_between(
    session: AsyncSession, city: CityConfig, start: dt.date, end: dt.date
) -> list[BroadcastSummary]:
    """Broadcasts that sent anything and started (or were due) between the local days."""
    zone = city_zone(city)
    lower = dt.datetime.combine(start, dt.time(), zone).astimezone(dt.UTC)
    upper = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), zone).astimezone(dt.UTC)
    moment = func.coalesce(Broadcast.started_at, Broadcast.send_at)
    query = (
        select(Broadcast)
        .where(
            moment >= lower,
            moment < upper,
            exists().where(queries.deliveries.c.broadcast_id == Broadcast.id),
        )
        .order_by(moment, Broadcast.id)
    )
    broadcasts = list((await session.execute(query)).scalars())
    figures = await channel_figures(session, broadcasts)
    return [
        BroadcastSummary(
            broadcast_id=b.id,
            title=b.title,
            sent_at=sent_at_of(b),
            channels=figures[b.id],
            total=combined(figures[b.id]),
        )
        for b in broadcasts
    ]


async def broadcast_stats(
    session: AsyncSession, city: CityConfig, broadcast_id: int
) -> BroadcastStats | None:
    broadcast = await session.get(Broadcast, broadcast_id)
    if broadcast is None:
        return None
    per_channel = (await channel_figures(session, [broadcast]))[broadcast.id]
    by_ward = (await channel_figures(session, [broadcast], "ward_code"))[broadcast.id]
    by_language = (await channel_figures(session, [broadcast], "language"))[broadcast.id]
    return BroadcastStats(
        broadcast_id=broadcast.id,
        title=broadcast.title,
        status=broadcast.status,
        sent_at=sent_at_of(broadcast),
        channels=per_channel,
        total=combined(per_channel),
        by_ward=by_ward,
        by_language=by_language,
        daily=await _daily(session, city, broadcast.id),
        failures=[
            FailureCount(channel=channel, error_code=code, count=n)
            for channel, code, n in await queries.failure_reasons(session, broadcast.id)
        ],
        definitions=DEFINITIONS,
    )


async def _daily(session: AsyncSession, city: CityConfig, broadcast_id: int) -> list[DayPoint]:
    tz, offset = city.city.timezone, _offset(city)
    sent = await queries.daily_sent(session, broadcast_id, tz, offset)
    opens = await queries.daily_opens(session, broadcast_id, tz, offset)
    points = []
    for channel, day in sorted(set(sent) | set(opens), key=lambda k: (k[1], k[0])):
        points.append(
            DayPoint(
                day=dt.date.fromisoformat(day),
                channel=channel,
                sent=sent.get((channel, day), 0),
                new_opens=None if channel == "line" else opens.get((channel, day), 0),
            )
        )
    return points
