"""A count that may be unknown, and why — so a withheld value is never shown or used as 0.

LINE withholds statistics under 20 users: such a value is somewhere in 0..19. Sums keep
the bounds (two withheld units = 0..38), and a sum is known only when every part is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from notify.stats.rates import WITHHELD

Status = Literal["known", "withheld", "not_read", "not_measured"]
PRIVACY_THRESHOLD = 20
_PRECEDENCE: dict[Status, int] = {"known": 0, "withheld": 1, "not_read": 2, "not_measured": 3}
NOT_READ_TEXT = "未取得"  # LINE has not been asked yet (the next poll will)
NOT_MEASURED_TEXT = "-"  # nothing measures this (e.g. LINE opens by language)


@dataclass(frozen=True, slots=True)
class Measure:
    status: Status
    low: int = 0
    high: int = 0

    @classmethod
    def known(cls, value: int) -> Measure:
        return cls("known", value, value)

    @classmethod
    def withheld(cls) -> Measure:
        return cls("withheld", 0, PRIVACY_THRESHOLD - 1)

    @classmethod
    def from_line(cls, value: int | None, polled: bool) -> Measure:
        if not polled:
            return cls("not_read")
        return cls.withheld() if value is None else cls.known(value)

    @property
    def value(self) -> int | None:
        return self.low if self.status == "known" else None

    @property
    def bounds(self) -> tuple[int, int] | None:
        return (self.low, self.high) if self.status == "withheld" else None

    def display(self) -> str:
        if self.status == "known":
            return str(self.low)
        if self.status == "withheld":
            if self.low == 0 and self.high == PRIVACY_THRESHOLD - 1:
                return WITHHELD
            return f"<{self.high + 1}" if self.low == 0 else f"{self.low}〜{self.high}"
        return NOT_READ_TEXT if self.status == "not_read" else NOT_MEASURED_TEXT


def total(parts: Iterable[Measure]) -> Measure:
    parts = list(parts)
    if not parts:
        return Measure("not_measured")
    status = max((p.status for p in parts), key=_PRECEDENCE.__getitem__)
    if status in ("not_read", "not_measured"):
        return Measure(status)
    return Measure(status, sum(p.low for p in parts), sum(p.high for p in parts))
