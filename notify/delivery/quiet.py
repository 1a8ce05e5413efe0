"""Quiet hours: a normal-priority message waits until the resident's window opens.

A resident's quiet hours are minutes after local midnight (`quiet_start_min`,
`quiet_end_min`); both None means none. A window may wrap midnight (22:00–07:00). Emergency
broadcasts ignore quiet hours entirely; that decision is the caller's.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

MINUTES_PER_DAY = 24 * 60


def in_quiet_hours(minute_of_day: int, start: int | None, end: int | None) -> bool:
    if start is None or end is None or start == end:
        return False
    if start < end:
        return start <= minute_of_day < end
    return minute_of_day >= start or minute_of_day < end  # wraps midnight


def quiet_until(
    now: dt.datetime, start: int | None, end: int | None, tz: ZoneInfo
) -> dt.datetime | None:
    """The UTC moment the quiet window ends, or None when `now` is outside quiet hours."""
    local = now.astimezone(tz)
    minute = local.hour * 60 + local.minute
    if not in_quiet_hours(minute, start, end):
        return None
    assert end is not None
    day = local.date()
    if minute >= end:  # the window ends tomorrow (we are in its evening part)
        day += dt.timedelta(days=1)
    # Wall-clock arithmetic in the zone (fold/gap safe enough: Japan has no DST).
    opens = dt.datetime.combine(day, dt.time(end // 60, end % 60), tzinfo=tz)
    return opens.astimezone(dt.UTC)


class QuietClock:
    """Caches the window-end moment per (start, end) pair for one planning pass: a city has
    a handful of distinct quiet-hour settings, and a pass sees up to a million rows."""

    def __init__(self, now: dt.datetime, tz: ZoneInfo) -> None:
        self.now = now
        self.tz = tz
        self._cache: dict[tuple[int | None, int | None], dt.datetime | None] = {}

    def held_until(self, start: int | None, end: int | None) -> dt.datetime | None:
        key = (start, end)
        if key not in self._cache:
            self._cache[key] = quiet_until(self.now, start, end, self.tz)
        return self._cache[key]
