"""The shapes statistics are served in (JSON API; the CSV is made from the same values)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pydantic import BaseModel, Field

from notify.stats.measure import Measure, Status
from notify.stats.rates import open_rate, percent_text


class Figures(BaseModel):
    """One channel (or "all") of one broadcast, optionally for one ward / language (`key`)."""

    channel: str
    key: str | None = None
    targeted: int
    sent: int = Field(description="accepted by the provider")
    failed: int
    pending: int
    skipped: int
    bounced: int
    delivered: int
    opens: int | None = Field(description="unique opens; null when not known")
    opens_status: Status
    opens_range: tuple[int, int] | None = Field(
        default=None, description="bounds when LINE withheld a part (under 20 users)"
    )
    opens_display: str
    clicks: int | None
    clicks_status: Status
    clicks_range: tuple[int, int] | None = None
    clicks_display: str
    proxy_opens: int | None = Field(
        default=None, description="email: pixel fetched by a privacy proxy (not an open)"
    )
    open_rate: Decimal | None = Field(description="percent, one decimal, half up")
    open_rate_display: str

    @property
    def opens_measure(self) -> Measure:
        return _measure(self.opens_status, self.opens, self.opens_range)

    @property
    def clicks_measure(self) -> Measure:
        return _measure(self.clicks_status, self.clicks, self.clicks_range)


def _measure(status: Status, value: int | None, bounds: tuple[int, int] | None) -> Measure:
    if status == "known" and value is not None:
        return Measure.known(value)
    if status == "withheld":
        low, high = bounds or (0, 19)
        return Measure("withheld", low, high)
    return Measure(status)


def figures_from(
    channel: str,
    key: str | None,
    counts: dict[str, int],
    bounced: int,
    delivered: int,
    opens: Measure,
    clicks: Measure,
    proxy_opens: int | None,
) -> Figures:
    rate = open_rate(opens.value, delivered)
    return Figures(
        channel=channel,
        key=key,
        bounced=bounced,
        delivered=delivered,
        opens=opens.value,
        opens_status=opens.status,
        opens_range=opens.bounds,
        opens_display=opens.display(),
        clicks=clicks.value,
        clicks_status=clicks.status,
        clicks_range=clicks.bounds,
        clicks_display=clicks.display(),
        proxy_opens=proxy_opens,
        open_rate=rate,
        open_rate_display=percent_text(rate) or "-",
        **counts,
    )


class DayPoint(BaseModel):
    day: dt.date
    channel: str
    sent: int
    new_opens: int | None = Field(description="first opens that day; null for LINE (unknown)")


class FailureCount(BaseModel):
    channel: str
    error_code: str | None
    count: int


class BroadcastStats(BaseModel):
    broadcast_id: int
    title: str
    status: str
    sent_at: dt.datetime | None
    channels: list[Figures]
    total: Figures
    by_ward: list[Figures] = []
    by_language: list[Figures] = []
    daily: list[DayPoint] = []
    failures: list[FailureCount] = Field(default=[], description="final failures by reason")
    definitions: dict[str, str] = {}


class BroadcastSummary(BaseModel):
    broadcast_id: int
    title: str
    sent_at: dt.datetime | None
    channels: list[Figures]
    total: Figures


class GrowthPoint(BaseModel):
    day: dt.date
    channel: str
    gained: int
    lost: int
    total: int


class LineFollowers(BaseModel):
    day: dt.date
    status: str
    followers: int | None
    targeted_reaches: int | None
    blocks: int | None


class Growth(BaseModel):
    series: list[GrowthPoint]
    line_insight: list[LineFollowers]
    definitions: dict[str, str]
