"""The periodic read of LINE statistics, within LINE's 60 statistics requests an hour.

Each run spends what is left of the shared hourly budget (`budget.take_slot`) on, in order:
follower statistics of recent days not yet final, then aggregation units that are due —
never read first, then recent broadcasts hourly, older ones twice a day, none after 30 days
(LINE's aggregation period is at most 30 days). A 429 ends the run; the next run resumes.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, or_, select

from notify.db import Database, utcnow
from notify.errors import ChannelError, RateLimited
from notify.settings import Settings
from notify.stats.budget import take_slot
from notify.stats.insight import JST, sync_units
from notify.stats.line_insight import LineStatsClient
from notify.stats.tables import LineAggregationUnit, LineFollowerStat

log = logging.getLogger(__name__)

MAX_PERIOD_DAYS = 30
RECENT = dt.timedelta(days=3)
RECENT_REPOLL = dt.timedelta(hours=1)
OLD_REPOLL = dt.timedelta(hours=12)
FOLLOWER_DAYS_BACK = 7
MAX_UNITS_PER_RUN = 60


@dataclass(slots=True)
class PollReport:
    units_read: int = 0
    units_withheld: int = 0
    follower_days_read: int = 0
    out_of_budget: bool = False
    rate_limited: bool = False
    errors: int = 0


def jst_day(at: dt.datetime) -> dt.date:
    return at.astimezone(JST).date()


async def due_units(db: Database, now: dt.datetime, limit: int) -> list[LineAggregationUnit]:
    unit = LineAggregationUnit
    query = (
        select(unit)
        .where(
            unit.created_at > now - dt.timedelta(days=MAX_PERIOD_DAYS + 1),
            or_(
                unit.polled_at.is_(None),
                and_(unit.created_at > now - RECENT, unit.polled_at < now - RECENT_REPOLL),
                unit.polled_at < now - OLD_REPOLL,
            ),
        )
        .order_by(unit.polled_at.is_not(None), unit.polled_at, unit.created_at)
        .limit(limit)
    )
    async with db.sessionmaker() as session:
        return list((await session.execute(query)).scalars())


async def poll_line_insight(
    settings: Settings, db: Database, redis: Any, *, now: dt.datetime | None = None
) -> PollReport:
    report = PollReport()
    if not settings.line_channel_access_token:
        return report  # LINE not configured: nothing to read
    now = now or utcnow()
    async with db.transaction() as session:
        await sync_units(session, now)
    async with LineStatsClient(settings) as client:
        try:
            await _poll_followers(client, db, redis, now, report)
            if not report.out_of_budget:
                await _poll_units(client, db, redis, now, report)
        except RateLimited:
            report.rate_limited = True
            log.warning("LINE statistics: 429, stopping until the next run")
    return report


async def _poll_followers(
    client: LineStatsClient, db: Database, redis: Any, now: dt.datetime, report: PollReport
) -> None:
    yesterday = jst_day(now) - dt.timedelta(days=1)
    days = [yesterday - dt.timedelta(days=n) for n in range(FOLLOWER_DAYS_BACK)]
    async with db.sessionmaker() as session:
        final = set(
            (
                await session.execute(
                    select(LineFollowerStat.day).where(
                        LineFollowerStat.day.in_(days), LineFollowerStat.status != "unready"
                    )
                )
            ).scalars()
        )
    for day in days:
        if day in final:
            continue
        if not await take_slot(redis):
            report.out_of_budget = True
            return
        try:
            reading = await client.followers(day)
        except RateLimited:
            raise
        except ChannelError as exc:
            report.errors += 1
            log.warning("LINE follower statistics for %s: %s", day, exc)
            continue
        async with db.transaction() as session:
            row = await session.get(LineFollowerStat, day) or LineFollowerStat(day=day)
            row.status = reading.status
            row.followers = reading.followers
            row.targeted_reaches = reading.targeted_reaches
            row.blocks = reading.blocks
            row.fetched_at = now
            session.add(row)
        report.follower_days_read += 1


async def _poll_units(
    client: LineStatsClient, db: Database, redis: Any, now: dt.datetime, report: PollReport
) -> None:
    for unit in await due_units(db, now, MAX_UNITS_PER_RUN):
        if not await take_slot(redis):
            report.out_of_budget = True
            return
        start = jst_day(unit.created_at)
        end = min(jst_day(now), start + dt.timedelta(days=MAX_PERIOD_DAYS))
        try:
            reading = await client.unit_statistics(unit.name, start, end)
        except RateLimited:
            raise
        except ChannelError as exc:
            report.errors += 1
            log.warning("LINE statistics for unit %s: %s", unit.name, exc)
            continue
        async with db.transaction() as session:
            row = await session.get(LineAggregationUnit, unit.name)
            if row is None:  # broadcast deleted meanwhile
                continue
            row.unique_impression = reading.unique_impression
            row.unique_click = reading.unique_click
            row.withheld = reading.unique_impression is None
            row.polled_at = now
            row.polls += 1
        report.units_read += 1
        report.units_withheld += reading.unique_impression is None
