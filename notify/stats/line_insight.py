"""The three LINE reads statistics need, through the LINE channel adapter.

- per-unit statistics (`GET /v2/bot/insight/message/event/aggregation`),
- follower statistics (`GET /v2/bot/insight/followers`),
- custom aggregation unit usage this month (`GET /v2/bot/message/aggregation/info`).

`channels.line_admin.LineAdmin` does the HTTP (line-bot-sdk's async clients) and translates
every SDK/transport error into the hub's `ChannelError` tree (429 → `RateLimited`); this module
only narrows its answers to what statistics store.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from channels.line_admin import LineAdmin
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


class LineStatsClient:
    """Open inside the event loop; `async with` closes the adapter's HTTP sessions."""

    def __init__(self, settings: Settings) -> None:
        self._line = LineAdmin(
            api_url=settings.line_api_url,
            data_url=settings.line_data_url,
            channel_access_token=settings.line_channel_access_token,
            timeout_s=REQUEST_TIMEOUT_S,
            max_connections=2,
        )

    async def __aenter__(self) -> LineStatsClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._line.close()

    async def unit_statistics(self, unit: str, start: dt.date, end: dt.date) -> UnitReading:
        answer = await self._line.aggregation_unit_statistics(unit, start, end)
        return UnitReading(answer.unique_impressions, answer.unique_clicks)

    async def followers(self, day: dt.date) -> FollowerReading:
        answer = await self._line.follower_statistics(day)
        return FollowerReading(
            status=_status_text(answer.status),
            followers=answer.followers,
            targeted_reaches=answer.targeted_reaches,
            blocks=answer.blocks,
        )

    async def unit_usage(self) -> int:
        return await self._line.aggregation_unit_usage()


def _status_text(status: str) -> str:
    # The SDK may hand back an enum whose str() is "Status.READY"; keep LINE's own word.
    return status.rsplit(".", 1)[-1].lower() if status else "unready"
