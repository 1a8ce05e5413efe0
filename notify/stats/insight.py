"""Custom aggregation units: which name a LINE send carries, within the monthly cap.

LINE reports push/multicast statistics only per custom aggregation unit named at send time,
and a channel may use at most 1,000 distinct names a month. Names follow the delivery
planner: `b{id}_{ward}` (one per broadcast and ward) or `b{id}` (one per broadcast).

The delivery engine asks once per broadcast, when it starts sending:

    mode = await unit_mode_for(ctx, broadcast_id)   # "ward" | "broadcast" | "none"

- "ward" while the month's usage is low (a broadcast costs about 8 names),
- "broadcast" when it is not (1 name),
- "none" when the cap is near: send without a unit; LINE opens are then "not measured".

or, per batch, `aggregation_unit_for(ctx, broadcast, ward_code)` for the name itself. The
choice is kept in Redis so all workers agree. Neither call ever raises: statistics must never
fail a send. Whatever names were actually used are read back from `delivery_batches` by
`sync_units` (the insight poll does it), so statistics do not depend on who chose them.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, String, column, func, select, table
from sqlalchemy.ext.asyncio import AsyncSession

from notify.db import Database, UTCDateTime, utcnow
from notify.models import Broadcast
from notify.queue_redis import redis_text
from notify.settings import Settings
from notify.stats.events import dialect_insert
from notify.stats.line_insight import LineStatsClient
from notify.stats.tables import LineAggregationUnit

log = logging.getLogger(__name__)

UnitMode = Literal["ward", "broadcast", "none"]
JST = ZoneInfo("Asia/Tokyo")
UNIT_CAP = 1000  # distinct names per month per LINE channel
SAFETY_MARGIN = 50  # names left to other tools and to batches already planned
WARD_MODE_CEILING = 600  # per-ward units only while the month's usage is below this
WARD_MODE_COST = 9  # one per ward (Kawasaki has 7) + slack
USAGE_MAX_AGE_S = 600.0  # re-read LINE's usage counter at most every 10 minutes
PLAN_TTL_S = 40 * 24 * 3600
SYNC_DAYS = 35

delivery_batches = table(
    "delivery_batches",
    column("broadcast_id", Integer),
    column("channel", String),
    column("ward_code", String),
    column("aggregation_unit", String),
    column("created_at", UTCDateTime),
)


def jst_month(at: dt.datetime | None = None) -> str:
    return (at or utcnow()).astimezone(JST).strftime("%Y%m")


def unit_name(broadcast_id: int, ward_code: str | None = None) -> str:
    return f"b{broadcast_id}_{ward_code}" if ward_code else f"b{broadcast_id}"


async def unit_mode_for(ctx: dict[str, Any], broadcast: Broadcast | int) -> UnitMode:
    """The unit mode of a broadcast (ctx: the arq worker context with settings, db, redis)."""
    broadcast_id = broadcast if isinstance(broadcast, int) else broadcast.id
    try:
        return await UnitPlanner(ctx["settings"], ctx["db"], ctx["redis"]).mode(broadcast_id)
    except Exception:  # statistics never stop a send
        log.exception("aggregation unit mode of broadcast %s: using none", broadcast_id)
        return "none"


async def aggregation_unit_for(
    ctx: dict[str, Any], broadcast: Broadcast | int, ward_code: str | None = None
) -> str | None:
    """The unit name for one LINE batch of `broadcast` (all of one ward, or None)."""
    broadcast_id = broadcast if isinstance(broadcast, int) else broadcast.id
    mode = await unit_mode_for(ctx, broadcast_id)
    if mode == "none":
        return None
    return unit_name(broadcast_id, ward_code if mode == "ward" else None)


class UnitPlanner:
    def __init__(self, settings: Settings, db: Database, redis: Any) -> None:
        self.settings, self.db, self.redis = settings, db, redis

    async def mode(self, broadcast_id: int) -> UnitMode:
        key = f"hub:line:unitmode:{broadcast_id}"
        stored = await self.redis.get(key)
        if stored:
            return redis_text(stored)  # type: ignore[return-value]
        used = await self.month_usage()
        decided: UnitMode
        if used + WARD_MODE_COST <= WARD_MODE_CEILING:
            decided = "ward"
        elif used + 1 <= UNIT_CAP - SAFETY_MARGIN:
            decided = "broadcast"
        else:
            log.warning("aggregation units: %s of %s used this month; none", used, UNIT_CAP)
            decided = "none"
        # The first decision wins, so concurrent workers agree.
        await self.redis.set(key, decided, nx=True, ex=PLAN_TTL_S)
        return redis_text(await self.redis.get(key) or decided)  # type: ignore[return-value]

    async def month_usage(self) -> int:
        """Names used this month: LINE's counter (cached) plus ours created since it was read."""
        month = jst_month()
        key = f"hub:line:unitusage:{month}"
        cached = {redis_text(k): redis_text(v) for k, v in (await self.redis.hgetall(key)).items()}
        line_used = int(cached["used"]) if "used" in cached else None
        read_at = float(cached.get("at", 0.0))
        if line_used is None or time.time() - read_at > USAGE_MAX_AGE_S:
            fresh = await self._read_line_usage()
            if fresh is not None:
                line_used, read_at = fresh, time.time()
                await self.redis.hset(key, mapping={"used": line_used, "at": read_at})
                await self.redis.expire(key, PLAN_TTL_S)
        async with self.db.transaction() as session:
            await sync_units(session)
            since = dt.datetime.fromtimestamp(read_at, dt.UTC)
            ours_total, ours_since = (
                await session.execute(
                    select(
                        func.count(),
                        func.count().filter(LineAggregationUnit.created_at > since),
                    ).where(LineAggregationUnit.month == month)
                )
            ).one()
        if line_used is None:  # LINE unreachable and nothing cached: count our own names
            return int(ours_total)
        return max(int(ours_total), line_used + int(ours_since))

    async def _read_line_usage(self) -> int | None:
        if not self.settings.line_channel_access_token:
            return None
        try:
            async with LineStatsClient(self.settings) as client:
                return await client.unit_usage()
        except Exception as exc:
            log.warning("aggregation unit usage unavailable: %s", exc)
            return None


async def sync_units(session: AsyncSession, now: dt.datetime | None = None) -> int:
    """Register the unit names the delivery engine put on LINE batches; returns how many new.

    A unit whose batches all belong to one ward is that ward's unit (so by-ward LINE opens
    are known); a unit spanning wards counts for the whole broadcast only.
    """
    b = delivery_batches.c
    known = select(LineAggregationUnit.name)
    query = (
        select(
            b.aggregation_unit,
            b.broadcast_id,
            func.min(b.ward_code),
            func.max(b.ward_code),
            func.count(b.ward_code),
            func.count(),
            func.min(b.created_at),
        )
        .where(
            b.channel == "line",
            b.aggregation_unit.is_not(None),
            b.created_at > (now or utcnow()) - dt.timedelta(days=SYNC_DAYS),
            b.aggregation_unit.not_in(known),
        )
        .group_by(b.aggregation_unit, b.broadcast_id)
    )
    rows = (await session.execute(query)).all()
    for name, broadcast_id, low, high, with_ward, count, first in rows:
        first_at = _aware(first)
        ward = low if low is not None and low == high and with_ward == count else None
        await session.execute(
            dialect_insert(session, LineAggregationUnit)
            .values(
                name=name,
                broadcast_id=broadcast_id,
                ward_code=ward,
                month=jst_month(first_at),
                created_at=first_at,
                polls=0,
                withheld=False,
            )
            .on_conflict_do_nothing(index_elements=["name"])
        )
    return len(rows)


def _aware(value: Any) -> dt.datetime:
    if isinstance(value, str):  # SQLite hands back aggregate datetimes as text
        value = dt.datetime.fromisoformat(value)
    if value is None:
        return utcnow()
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
