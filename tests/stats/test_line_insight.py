"""LINE statistics against the LINE sandbox: units read within the hourly budget, withheld
values kept unknown, and the aggregation unit plan within the monthly cap."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from notify.db import Database
from notify.settings import Settings
from notify.stats.budget import LINE_STATISTICS_KEY, LINE_STATISTICS_PER_HOUR, take_slot
from notify.stats.insight import (
    UnitPlanner,
    aggregation_unit_for,
    jst_month,
    unit_mode_for,
)
from notify.stats.insight_poll import poll_line_insight
from notify.stats.tables import LineAggregationUnit, LineFollowerStat
from sandbox.line.server import LineSandbox
from tests.stats.conftest import line_batch, line_requests, make_broadcast, make_targets

UNIT_PATH = "/v2/bot/insight/message/event/aggregation"
FOLLOWERS_PATH = "/v2/bot/insight/followers"


async def _units(db: Database) -> dict[str, LineAggregationUnit]:
    async with db.sessionmaker() as session:
        rows = (await session.execute(select(LineAggregationUnit))).scalars()
        return {row.name: row for row in rows}


async def _redis(settings: Settings) -> aioredis.Redis:
    assert settings.redis_url
    return aioredis.from_url(settings.redis_url)


async def test_poll_reads_each_unit_and_keeps_withheld_values_unknown(
    hub: TestClient[Any, Any], hub_db: Database, stats_settings: Settings, line_sandbox: LineSandbox
) -> None:
    broadcast = await make_broadcast(hub_db)
    kawasaki = await make_targets(hub_db, "line", 25, ward_code="141313")
    saiwai = await make_targets(hub_db, "line", 5, ward_code="141321")
    await line_batch(
        hub_db, line_sandbox, broadcast, kawasaki, f"b{broadcast}_141313", ward_code="141313"
    )
    await line_batch(
        hub_db, line_sandbox, broadcast, saiwai, f"b{broadcast}_141321", ward_code="141321"
    )
    redis = await _redis(stats_settings)
    try:
        report = await poll_line_insight(stats_settings, hub_db, redis)
    finally:
        await redis.aclose()

    assert (report.units_read, report.units_withheld, report.errors) == (2, 1, 0)
    units = await _units(hub_db)
    big, small = units[f"b{broadcast}_141313"], units[f"b{broadcast}_141321"]
    assert (big.ward_code, big.unique_impression, big.withheld) == ("141313", 25, False)
    assert (small.ward_code, small.unique_impression, small.withheld) == ("141321", None, True)
    assert small.polled_at is not None and small.polls == 1
    asked = [parse_qs(e["query"]) for e in line_requests(line_sandbox, UNIT_PATH)]
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=9))).strftime("%Y%m%d")
    assert sorted(q["customAggregationUnit"][0] for q in asked) == sorted(units)
    assert all(q["from"] == [today] and q["to"] == [today] for q in asked)
    # Follower statistics: the last 7 JST days, until LINE says they are final.
    assert report.follower_days_read == 7
    assert len(line_requests(line_sandbox, FOLLOWERS_PATH)) == 7


async def test_poll_stays_within_the_shared_hourly_budget(
    hub: TestClient[Any, Any], hub_db: Database, stats_settings: Settings, line_sandbox: LineSandbox
) -> None:
    broadcast = await make_broadcast(hub_db)
    for ward in ("141313", "141321", "141330"):
        targets = await make_targets(hub_db, "line", 2, ward_code=ward)
        await line_batch(
            hub_db, line_sandbox, broadcast, targets, f"b{broadcast}_{ward}", ward_code=ward
        )
    redis = await _redis(stats_settings)
    try:
        # Other workers already spent all but 9 requests of this hour.
        now = time.time()
        for i in range(LINE_STATISTICS_PER_HOUR - 9):
            assert await take_slot(redis, now=now - 3000 + i)
        report = await poll_line_insight(stats_settings, hub_db, redis)
        assert report.out_of_budget
        assert report.follower_days_read == 7 and report.units_read == 2
        sent = len(line_requests(line_sandbox, UNIT_PATH)) + len(
            line_requests(line_sandbox, FOLLOWERS_PATH)
        )
        assert sent == 9
        # Nothing more this hour, whatever runs next ...
        again = await poll_line_insight(stats_settings, hub_db, redis)
        assert again.out_of_budget and again.units_read == 0
        assert len(line_requests(line_sandbox, UNIT_PATH)) == 2
        # ... and the slots taken 3000 s ago free up after the hour: the third unit is read.
        assert await redis.zcard(LINE_STATISTICS_KEY) == LINE_STATISTICS_PER_HOUR
        later = await take_slot(redis, now=now + 700)
        assert later
    finally:
        await redis.aclose()
    units = await _units(hub_db)
    assert sum(u.polled_at is not None for u in units.values()) == 2


async def test_a_429_from_line_ends_the_run_without_losing_anything(
    hub: TestClient[Any, Any], hub_db: Database, stats_settings: Settings, line_sandbox: LineSandbox
) -> None:
    broadcast = await make_broadcast(hub_db)
    targets = await make_targets(hub_db, "line", 21)
    await line_batch(hub_db, line_sandbox, broadcast, targets, f"b{broadcast}")
    async with aiohttp.ClientSession() as http:
        resp = await http.post(
            f"{line_sandbox.url}/_sandbox/faults/next",
            json={"count": 1, "kind": "error", "status": 429},
        )
        assert resp.status == 200, await resp.text()
    redis = await _redis(stats_settings)
    try:
        first = await poll_line_insight(stats_settings, hub_db, redis)
        assert first.rate_limited and first.units_read == 0
        second = await poll_line_insight(stats_settings, hub_db, redis)
    finally:
        await redis.aclose()
    assert second.units_read == 1
    unit = (await _units(hub_db))[f"b{broadcast}"]
    assert (unit.ward_code, unit.unique_impression) == (None, 21)
    async with hub_db.sessionmaker() as session:
        days = (await session.execute(select(LineFollowerStat))).scalars().all()
    assert len(days) == 7 and {d.status for d in days} == {"ready"}


async def test_unit_mode_follows_the_months_usage_and_sticks(
    hub: TestClient[Any, Any], hub_db: Database, stats_settings: Settings, line_sandbox: LineSandbox
) -> None:
    redis = await _redis(stats_settings)
    ctx = {"settings": stats_settings, "db": hub_db, "redis": redis}
    try:
        # Usage read from LINE (the sandbox counts the names multicasts used): low → per ward.
        first = await make_broadcast(hub_db)
        targets = await make_targets(hub_db, "line", 1)
        await line_batch(hub_db, line_sandbox, first, targets, "other_tool_unit")
        assert await UnitPlanner(stats_settings, hub_db, redis).month_usage() == 1
        assert await unit_mode_for(ctx, first) == "ward"
        assert await aggregation_unit_for(ctx, first, "141313") == f"b{first}_141313"
        assert len(line_requests(line_sandbox, "/v2/bot/message/aggregation/info")) == 1

        key = f"hub:line:unitusage:{jst_month()}"
        await redis.hset(key, mapping={"used": 595, "at": time.time()})
        second = await make_broadcast(hub_db)
        assert await unit_mode_for(ctx, second) == "broadcast"
        assert await aggregation_unit_for(ctx, second, "141313") == f"b{second}"

        await redis.hset(key, mapping={"used": 951, "at": time.time()})
        third = await make_broadcast(hub_db)
        assert await unit_mode_for(ctx, third) == "none"
        assert await aggregation_unit_for(ctx, third, "141313") is None
        # A decision sticks for the whole broadcast, whatever the usage does meanwhile.
        await redis.hset(key, mapping={"used": 0, "at": time.time()})
        assert await unit_mode_for(ctx, second) == "broadcast"
        assert await unit_mode_for(ctx, third) == "none"
        assert len(line_requests(line_sandbox, "/v2/bot/message/aggregation/info")) == 1
    finally:
        await redis.aclose()


async def test_unit_choice_never_fails_a_send(hub_db: Database, stats_settings: Settings) -> None:
    dead = aioredis.from_url("redis://127.0.0.1:1/0")
    try:
        ctx = {"settings": stats_settings, "db": hub_db, "redis": dead}
        assert await unit_mode_for(ctx, 1) == "none"
        assert await aggregation_unit_for(ctx, 1, "141313") is None
    finally:
        await dead.aclose()
