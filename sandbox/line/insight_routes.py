"""Insight: followers, per-request and per-aggregation-unit statistics.

The numbers are real counts of what the simulator delivered and of the opens it simulated.
As on LINE, a value under 20 (`privacy_threshold`) comes back null; `delivered` is exact.
Clicks and media plays are not simulated: they are 0, hence null.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from aiohttp import web

from .errors import NOT_FOUND, LineApiError, invalid
from .state import JST, LINE_STATE, LineState

_MEDIA = (
    "mediaPlayed",
    "mediaPlayed25Percent",
    "mediaPlayed50Percent",
    "mediaPlayed75Percent",
    "mediaPlayed100Percent",
    "uniqueMediaPlayed",
    "uniqueMediaPlayed25Percent",
    "uniqueMediaPlayed50Percent",
    "uniqueMediaPlayed75Percent",
    "uniqueMediaPlayed100Percent",
)
MAX_PERIOD_DAYS = 30


def _private(state: LineState, value: int) -> int | None:
    return value if value >= state.config.privacy_threshold else None


def _day(text: str, prop: str) -> date:
    try:
        return datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        raise LineApiError(400, f"The value for the '{prop}' parameter is invalid") from None


async def followers(request: web.Request) -> web.Response:
    state = request.app[LINE_STATE]
    today = datetime.fromtimestamp(state.clock.wall(), JST).date()
    ready_until = today - timedelta(days=state.config.insight_delay_days)
    asked = request.query.get("date")
    day = _day(asked, "date") if asked else ready_until
    if day > ready_until:
        return web.json_response({"status": "unready"})
    key = int(day.strftime("%Y%m%d"))
    follows = sum(n for d, n in state.follows_by_day.items() if d <= key)
    blocks = sum(n for d, n in state.blocks_by_day.items() if d <= key)
    return web.json_response(
        {
            "status": "ready",
            "followers": follows,
            "targetedReaches": max(follows - blocks, 0),
            "blocks": blocks,
        }
    )


def _bubbles(state: LineState, impressions: list[int], openers: int) -> list[dict[str, Any]]:
    return [
        {
            "seq": seq + 1,
            "impression": _private(state, count),
            "uniqueImpression": _private(state, openers),
        }
        | dict.fromkeys(_MEDIA)
        for seq, count in enumerate(impressions)
    ]


async def message_event(request: web.Request) -> web.Response:
    state = request.app[LINE_STATE]
    record = state.records.get(request.query["requestId"])
    if record is None:
        raise LineApiError(404, NOT_FOUND)
    overview = {
        "requestId": record.request_id,
        "timestamp": int(record.accepted_at),
        "delivered": record.delivered,
        "uniqueImpression": _private(state, record.openers),
        "uniqueClick": None,
        "uniqueMediaPlayed": None,
        "uniqueMediaPlayed100Percent": None,
    }
    messages = _bubbles(state, record.impressions, record.openers)
    for bubble in messages:
        del bubble["uniqueImpression"]  # not part of the per-request bubble object
    return web.json_response({"overview": overview, "messages": messages, "clicks": []})


async def unit_statistics(request: web.Request) -> web.Response:
    state = request.app[LINE_STATE]
    start, end = _day(request.query["from"], "from"), _day(request.query["to"], "to")
    if end < start:
        raise invalid("to", "must be on or after from")
    if (end - start).days > MAX_PERIOD_DAYS:
        raise invalid("to", f"must be within {MAX_PERIOD_DAYS} days of from")
    low, high = int(start.strftime("%Y%m%d")), int(end.strftime("%Y%m%d"))
    stats = state.units.get(request.query["customAggregationUnit"])
    impressions: list[int] = []
    openers = 0
    if stats is not None:
        for day, counts in stats.impressions_by_day.items():
            if low <= day <= high:
                impressions.extend([0] * (len(counts) - len(impressions)))
                for seq, count in enumerate(counts):
                    impressions[seq] += count
        openers = sum(1 for day in stats.first_open_day.values() if low <= day <= high)
    overview = {
        "uniqueImpression": _private(state, openers),
        "uniqueClick": None,
        "uniqueMediaPlayed": None,
        "uniqueMediaPlayed100Percent": None,
    }
    messages = _bubbles(state, impressions, openers)
    return web.json_response({"overview": overview, "messages": messages, "clicks": []})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v2/bot/insight/followers", followers)
    app.router.add_get("/v2/bot/insight/message/event", message_event)
    app.router.add_get("/v2/bot/insight/message/event/aggregation", unit_statistics)
