"""Insight numbers are real counts of what the simulator delivered and of simulated opens."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from sandbox.line import LineConfig
from sandbox.line.state import JST

from .helpers import TEXT, Line, user


def today() -> str:
    return datetime.now(JST).strftime("%Y%m%d")


async def unit_stats(line: Line, unit: str, start: str, end: str) -> tuple[int, dict]:
    status, _, body = await line.call(
        "GET",
        "/v2/bot/insight/message/event/aggregation",
        params={"customAggregationUnit": unit, "from": start, "to": end},
    )
    return status, body


@pytest.mark.parametrize("config", [LineConfig(open_probability=1.0)])
async def test_unit_statistics_count_unique_openers(line: Line) -> None:
    await line.control("POST", "blocked", json={"add": [user(0)]})
    users = [user(i) for i in range(26)]  # 25 reachable, one blocked
    await line.multicast(users[:20], customAggregationUnits=["bc7_ward1"])
    await line.multicast(users[10:], customAggregationUnits=["bc7_ward1"])  # 10 get it twice
    status, body = await unit_stats(line, "bc7_ward1", today(), today())
    assert status == 200
    assert body["overview"]["uniqueImpression"] == 25
    assert body["messages"][0]["seq"] == 1
    assert body["messages"][0]["impression"] == 35  # 19 + 16 deliveries, all opened
    assert body["messages"][0]["uniqueImpression"] == 25
    assert body["overview"]["uniqueClick"] is None and body["clicks"] == []
    stats = await line.control("GET", "stats")
    assert stats["units"]["bc7_ward1"] == {"delivered": 35, "uniqueOpeners": 25}


@pytest.mark.parametrize("config", [LineConfig(open_probability=1.0)])
async def test_values_under_20_users_are_null(line: Line) -> None:
    await line.multicast([user(i) for i in range(19)], customAggregationUnits=["small"])
    _, body = await unit_stats(line, "small", today(), today())
    assert body["overview"]["uniqueImpression"] is None
    assert body["messages"][0]["impression"] is None
    _, body = await unit_stats(line, "never_used", today(), today())
    assert body == {
        "overview": {
            "uniqueImpression": None,
            "uniqueClick": None,
            "uniqueMediaPlayed": None,
            "uniqueMediaPlayed100Percent": None,
        },
        "messages": [],
        "clicks": [],
    }


@pytest.mark.parametrize("config", [LineConfig(open_probability=0.5, seed=3)])
async def test_open_probability_is_applied(line: Line) -> None:
    await line.multicast([user(i) for i in range(400)], customAggregationUnits=["half"])
    _, body = await unit_stats(line, "half", today(), today())
    assert 150 < body["overview"]["uniqueImpression"] < 250


async def test_unit_statistics_query_is_validated(line: Line) -> None:
    start = datetime.now(JST)
    status, body = await unit_stats(
        line, "u1", start.strftime("%Y%m%d"), (start + timedelta(days=31)).strftime("%Y%m%d")
    )
    assert status == 400
    status, body = await unit_stats(line, "bad-name", today(), today())
    assert status == 400 and body["details"][0]["property"] == "customAggregationUnit"
    status, body = await unit_stats(line, "u1", "2026", today())
    assert status == 400


@pytest.mark.parametrize("config", [LineConfig(open_probability=1.0)])
async def test_broadcast_statistics_by_request_id(line: Line) -> None:
    await line.control("POST", "followers", json={"generate": 30})
    await line.control("POST", "blocked", json={"add": [user(0), user(1)]})
    _, headers, _ = await line.call("POST", "/v2/bot/message/broadcast", json={"messages": TEXT})
    request_id = headers["x-line-request-id"]
    status, _, body = await line.call(
        "GET", "/v2/bot/insight/message/event", params={"requestId": request_id}
    )
    assert status == 200
    assert body["overview"]["requestId"] == request_id
    assert body["overview"]["delivered"] == 28
    assert body["overview"]["uniqueImpression"] == 28
    assert body["messages"] == [
        {
            "seq": 1,
            "impression": 28,
            "mediaPlayed": None,
            "mediaPlayed25Percent": None,
            "mediaPlayed50Percent": None,
            "mediaPlayed75Percent": None,
            "mediaPlayed100Percent": None,
            "uniqueMediaPlayed": None,
            "uniqueMediaPlayed25Percent": None,
            "uniqueMediaPlayed50Percent": None,
            "uniqueMediaPlayed75Percent": None,
            "uniqueMediaPlayed100Percent": None,
        }
    ]
    status, _, _ = await line.call(
        "GET", "/v2/bot/insight/message/event", params={"requestId": "unknown"}
    )
    assert status == 404


async def test_follower_statistics_are_ready_the_next_day(line: Line) -> None:
    await line.control("POST", "followers", json={"generate": 40})
    await line.control("POST", "blocked", json={"add": [user(1), user(2)]})
    _, _, body = await line.call("GET", "/v2/bot/insight/followers", params={"date": today()})
    assert body == {"status": "unready"}
    await line.control("POST", "clock", json={"advance_s": 86400})
    _, _, body = await line.call("GET", "/v2/bot/insight/followers")  # default: yesterday
    assert body == {"status": "ready", "followers": 40, "targetedReaches": 38, "blocks": 2}
    day_before = (datetime.now(JST) - timedelta(days=1)).strftime("%Y%m%d")
    _, _, body = await line.call("GET", "/v2/bot/insight/followers", params={"date": day_before})
    assert body["followers"] == 0


async def test_insight_is_limited_to_60_an_hour(line: Line) -> None:
    for _ in range(60):
        status, _ = await unit_stats(line, "u1", today(), today())
        assert status == 200
    status, _ = await unit_stats(line, "u1", today(), today())
    assert status == 429
