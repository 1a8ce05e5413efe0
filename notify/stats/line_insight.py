"""The three LINE reads statistics need, behind one small client.

- per-unit statistics (`GET /v2/bot/insight/message/event/aggregation`),
- follower statistics (`GET /v2/bot/insight/followers`),
- custom aggregation unit usage this month (`GET /v2/bot/message/aggregation/info`).

line-bot-sdk's async clients do the HTTP; every SDK/transport error is translated here into
the hub's `ChannelError` tree. When the LINE channel adapter grows these reads, this module
becomes a thin forwarder to it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from typing import Any

import aiohttp
from linebot.v3 import insight, messaging

from notify.errors import (
    ChannelError,
    PermanentChannelError,
    RateLimited,
    TransientChannelError,
)
from notify.settings import Settings

REQUEST_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class UnitReading:
    """None = LINE withheld the value (fewer than 20 users) — unknown, never zero."""

    unique_impression: int | None
    unique_click: int | None


@dataclass(frozen=True, slots=True)
class FollowerReading:
    status: str
    followers: int | None
    targeted_reaches: int | None
    blocks: int | None


def yyyymmdd(day: dt.date) -> str:
    return day.strftime("%Y%m%d")


def _translate(exc: BaseException, what: str) -> ChannelError:
    if isinstance(exc, insight.ApiException | messaging.ApiException):
        status = int(exc.status or 0)
        message = f"LINE {what}: HTTP {status} {exc.reason or ''}".strip()
        if status == 429:
            return RateLimited(message, provider_code="429")
        if status >= 500:
            return TransientChannelError(message, provider_code=str(status))
        return PermanentChannelError(message, provider_code=str(status))
    if isinstance(exc, aiohttp.ClientError | asyncio.TimeoutError | OSError):
        return TransientChannelError(f"LINE {what}: {type(exc).__name__}: {exc}")
    return PermanentChannelError(f"LINE {what}: {type(exc).__name__}: {exc}")


class LineStatsClient:
    """Open inside the event loop (the SDK makes its aiohttp session at construction)."""

    def __init__(self, settings: Settings) -> None:
        token = settings.line_channel_access_token
        self._insight_client = insight.AsyncApiClient(
            insight.Configuration(host=settings.line_api_url, access_token=token)
        )
        self._messaging_client = messaging.AsyncApiClient(
            messaging.Configuration(host=settings.line_api_url, access_token=token)
        )
        self._insight = insight.AsyncInsight(self._insight_client)
        self._messaging = messaging.AsyncMessagingApi(self._messaging_client)

    async def __aenter__(self) -> LineStatsClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._insight_client.close()
        await self._messaging_client.close()

    async def _call(self, what: str, call: Any) -> Any:
        try:
            return await asyncio.wait_for(call, REQUEST_TIMEOUT_S)
        except Exception as exc:  # every SDK / transport error leaves as a ChannelError
            raise _translate(exc, what) from exc

    async def unit_statistics(self, unit: str, start: dt.date, end: dt.date) -> UnitReading:
        response = await self._call(
            "unit statistics",
            self._insight.get_statistics_per_unit(unit, yyyymmdd(start), yyyymmdd(end)),
        )
        overview = response.overview
        return UnitReading(overview.unique_impression, overview.unique_click)

    async def followers(self, day: dt.date) -> FollowerReading:
        response = await self._call(
            "follower statistics", self._insight.get_number_of_followers(yyyymmdd(day))
        )
        return FollowerReading(
            status=response.status or "unready",
            followers=response.followers,
            targeted_reaches=response.targeted_reaches,
            blocks=response.blocks,
        )

    async def unit_usage(self) -> int:
        response = await self._call(
            "aggregation unit usage", self._messaging.get_aggregation_unit_usage()
        )
        return int(response.num_of_custom_aggregation_units or 0)
