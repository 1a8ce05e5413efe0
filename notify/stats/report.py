"""Per-broadcast statistics: targeted, sent, delivered, failed, opens and open rate.

"Delivered" per channel (also in `DEFINITIONS`, served with every report):
- LINE: accepted by the Messaging API (multicast). LINE's per-unit statistics report opens,
  not deliveries, so accepted is the best known value (a user who blocked the account in
  between is counted, as LINE's own "sent" figure does).
- FCM (app): accepted by FCM. FCM gives no delivery receipts.
- email: accepted by the SMTP server, minus later bounces (`events.record_bounce`).

"Opens" per channel: LINE — unique impressions of the broadcast's aggregation unit(s),
read by the insight poll, "<20" when LINE withholds them; app — devices that reported an
open; email — recipients with a non-proxy pixel open or a click (privacy-proxy fetches are
reported as `proxy_opens`, clicks as `clicks`). Only recipients the hub sent to count.
Open rate = opens / delivered in percent, half up to one decimal.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from notify.models import Broadcast
from notify.stats import queries
from notify.stats.measure import Measure, total
from notify.stats.schemas import Figures, figures_from
from notify.stats.tables import LineAggregationUnit

CHANNEL_ORDER = ("line", "fcm", "email")
DEFINITIONS = {
    "delivered.line": "LINE: Messaging API が受け付けた数 / accepted by LINE (per-unit "
    "statistics report no deliveries)",
    "delivered.fcm": "アプリ: FCM が受け付けた数 / accepted by FCM (no delivery receipts)",
    "delivered.email": "メール: SMTP が受け付けた数 − 後日の不達 / accepted by SMTP minus "
    "later bounces",
    "opens.line": "LINE: 集計単位のユニーク開封数 (20人未満は <20) / unique impressions of the "
    "aggregation unit; under 20 withheld by LINE",
    "opens.fcm": "アプリ: 開封を報告した端末数 / devices that reported an open",
    "opens.email": "メール: 開封画像 (プライバシープロキシを除く) またはクリックの受信者数 / "
    "recipients with a pixel open (privacy proxies excluded) or a click",
    "open_rate": "開封数 ÷ 配信数、小数第1位で四捨五入 / opens / delivered, half-up, 1 decimal",
}


@dataclass(slots=True)
class _Cell:
    counts: dict[str, int] = field(default_factory=dict)
    opens: dict[str, int] | None = None
    bounced: int = 0


def _line_measures(
    units: Sequence[LineAggregationUnit], ward: str | None, by_ward: bool
) -> tuple[Measure, Measure]:
    """(opens, clicks) for LINE from the broadcast's units; for one ward when `by_ward`."""
    if by_ward:
        units = [u for u in units if u.ward_code is not None and u.ward_code == ward]
    if not units:
        return Measure("not_measured"), Measure("not_measured")
    opens = total(Measure.from_line(u.unique_impression, u.polled_at is not None) for u in units)
    clicks = total(Measure.from_line(u.unique_click, u.polled_at is not None) for u in units)
    return opens, clicks


def _figures(
    channel: str, key: str | None, cell: _Cell, units: Sequence[LineAggregationUnit], dim: str
) -> Figures:
    counts = {name: cell.counts.get(name, 0) for name in queries.COUNT_NAMES}
    delivered = counts["sent"] - (cell.bounced if channel == "email" else 0)
    proxy: int | None = None
    if channel == "line":
        if dim == "language":
            opens = clicks = Measure("not_measured")
        else:
            opens, clicks = _line_measures(units, key, by_ward=dim == "ward_code")
    else:
        found = cell.opens or {}
        opens = Measure.known(found.get("opens", 0))
        clicks = (
            Measure.known(found.get("clicks", 0)) if channel == "email" else Measure("not_measured")
        )
        proxy = found.get("proxy_opens", 0) if channel == "email" else None
    return figures_from(channel, key, counts, cell.bounced, delivered, opens, clicks, proxy)


async def channel_figures(
    session: AsyncSession,
    broadcasts: Sequence[Broadcast],
    dimension: queries.Dimension = None,
) -> dict[int, list[Figures]]:
    """Figures per broadcast, channel (and ward / language), in a few grouped queries."""
    ids = [b.id for b in broadcasts]
    if not ids:
        return {}
    counts = await queries.delivery_counts(session, ids, dimension)
    opens = await queries.open_counts(session, ids, dimension)
    bounces = await queries.bounce_counts(session, ids, dimension)
    units = await queries.line_units(session, ids)
    cells: dict[queries.Key, _Cell] = {}
    for key, found in counts.items():
        cells.setdefault(key, _Cell()).counts = found
    for key, opened in opens.items():
        cells.setdefault(key, _Cell()).opens = opened
    for key, bounced in bounces.items():
        cells.setdefault(key, _Cell()).bounced = bounced
    for broadcast in broadcasts:  # channels chosen but with no deliveries yet show zeros
        if dimension is None:
            for channel in broadcast.channels or ():
                cells.setdefault((broadcast.id, channel, None), _Cell())
    out: dict[int, list[Figures]] = {b.id: [] for b in broadcasts}
    order = {c: i for i, c in enumerate(CHANNEL_ORDER)}
    for (bid, channel, value), cell in sorted(
        cells.items(), key=lambda kv: (kv[0][0], order.get(kv[0][1], 9), kv[0][2] or "")
    ):
        out[bid].append(_figures(channel, value, cell, units.get(bid, ()), dimension or ""))
    return out


def combined(rows: Sequence[Figures], channel: str = "all", key: str | None = None) -> Figures:
    """All channels of one broadcast together; opens known only if known on every channel."""
    counts = {name: sum(getattr(r, name) for r in rows) for name in queries.COUNT_NAMES}
    opens = total(r.opens_measure for r in rows)
    clicks = total(r.clicks_measure for r in rows if r.clicks_status != "not_measured")
    proxies = [r.proxy_opens for r in rows if r.proxy_opens is not None]
    return figures_from(
        channel,
        key,
        counts,
        sum(r.bounced for r in rows),
        sum(r.delivered for r in rows),
        opens,
        clicks,
        sum(proxies) if proxies else None,
    )


def sent_at_of(broadcast: Broadcast) -> dt.datetime | None:
    return broadcast.started_at or broadcast.send_at
