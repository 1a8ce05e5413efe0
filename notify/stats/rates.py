"""Open rates as the city writes them: percent, one decimal, rounded half up.

Exact integer arithmetic, no float: 1/8 = 12.5 %, 1/16 = 6.25 % → 6.3 %, 1/3 = 33.3 %.
"""

from __future__ import annotations

from decimal import Decimal

WITHHELD = "<20"  # what LINE's privacy threshold looks like in every report


def open_rate(opens: int | None, delivered: int | None) -> Decimal | None:
    """Opens / delivered in percent, half-up to one decimal; None when it cannot be known."""
    if opens is None or delivered is None or delivered <= 0 or opens < 0:
        return None
    # tenths of a percent = opens * 1000 / delivered; half up = floor(x + 1/2).
    tenths = (2 * opens * 1000 + delivered) // (2 * delivered)
    return Decimal(tenths).scaleb(-1)


def percent_text(rate: Decimal | None) -> str:
    return "" if rate is None else f"{rate:.1f}%"
