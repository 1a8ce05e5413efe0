"""Follower growth per channel and day, from the registry's endpoints and LINE's insight.

- LINE friends: LINE endpoints; gained on `created_at`, lost when blocked (status changes,
  dated by `updated_at`).
- app devices: FCM endpoints; lost when pruned (unregistered token) or withdrawn.
- email subscribers: email endpoints counted from their confirmation (`consent_at`); lost
  on withdrawal (`withdrawn_at`) or when pruned after a hard bounce.
LINE's own follower statistics (`stats_line_followers`) are served beside, as LINE counts
them (friends added ever, blocks), since they include friends who never registered.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from notify.models import Consent, Endpoint, EndpointStatus
from notify.stats.queries import local_day
from notify.stats.schemas import Growth, GrowthPoint, LineFollowers
from notify.stats.tables import LineFollowerStat

CHANNELS = ("line", "fcm", "email")
DEFINITIONS = {
    "line": "LINE 友だち (登録済み) / LINE friends known to the hub (blocked = lost)",
    "fcm": "アプリ端末 / app devices (pruned or withdrawn = lost)",
    "email": "メール購読者 (確認済み) / confirmed email subscribers (withdrawn or bounced = lost)",
    "line_insight": "LINE 公式の友だち統計 (前日分まで) / LINE's own follower statistics",
}


def _start() -> Any:
    return case(
        (Endpoint.channel == "email", Endpoint.consent_at),
        else_=Endpoint.created_at,
    )


def _end() -> Any:
    withdrawn = Endpoint.consent == Consent.WITHDRAWN
    inactive = Endpoint.status != EndpointStatus.ACTIVE
    return case(
        (withdrawn, func.coalesce(Endpoint.withdrawn_at, Endpoint.updated_at)),
        (inactive, Endpoint.updated_at),
        else_=None,
    )


def _counted() -> Any:
    # LINE friends count whatever their consent; app and email need a granted consent once.
    return or_(
        Endpoint.channel == "line",
        and_(Endpoint.channel == "fcm", Endpoint.consent != Consent.PENDING),
        and_(Endpoint.channel == "email", Endpoint.consent_at.is_not(None)),
    )


async def follower_growth(
    session: AsyncSession, start: dt.date, end: dt.date, tz: str, offset: dt.timedelta
) -> Growth:
    start_utc = dt.datetime.combine(start, dt.time(), dt.UTC) - offset
    begin, finish = _start(), _end()
    base_query = (
        select(Endpoint.channel, func.count())
        .where(_counted(), begin < start_utc, or_(finish.is_(None), finish >= start_utc))
        .group_by(Endpoint.channel)
    )
    totals = {ch: 0 for ch in CHANNELS}
    totals.update({ch: int(n) for ch, n in await session.execute(base_query)})
    end_utc = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), dt.UTC) - offset
    gained = await _per_day(session, begin, (start_utc, end_utc), tz, offset)
    lost = await _per_day(session, finish, (start_utc, end_utc), tz, offset)
    series: list[GrowthPoint] = []
    day = start
    while day <= end:
        text = day.isoformat()
        for channel in CHANNELS:
            plus, minus = gained.get((channel, text), 0), lost.get((channel, text), 0)
            totals[channel] += plus - minus
            series.append(
                GrowthPoint(
                    day=day, channel=channel, gained=plus, lost=minus, total=totals[channel]
                )
            )
        day += dt.timedelta(days=1)
    insight_rows = await session.execute(
        select(LineFollowerStat)
        .where(LineFollowerStat.day.between(start, end))
        .order_by(LineFollowerStat.day)
    )
    line_insight = [
        LineFollowers(
            day=row.day,
            status=row.status,
            followers=row.followers,
            targeted_reaches=row.targeted_reaches,
            blocks=row.blocks,
        )
        for row in insight_rows.scalars()
    ]
    return Growth(series=series, line_insight=line_insight, definitions=DEFINITIONS)


async def _per_day(
    session: AsyncSession,
    moment: Any,
    window: tuple[dt.datetime, dt.datetime],
    tz: str,
    offset: dt.timedelta,
) -> dict[tuple[str, str], int]:
    day = local_day(session, moment, tz, offset).label("day")
    query = (
        select(Endpoint.channel, day, func.count())
        .where(_counted(), moment >= window[0], moment < window[1])
        .group_by(Endpoint.channel, day)
    )
    return {(ch, str(d)): int(n) for ch, d, n in await session.execute(query)}
