"""Analysts: the city's per-broadcast table (配信日時 / 内容 / 配信数 / 開封数 / 開封率), charts of
open rate by broadcast, channel and ward, follower growth, the CSV, and one broadcast in detail.

Every number comes from `notify.stats` (the same functions as the JSON API and the CSV); the
page only arranges them. Open rates LINE withholds stay "<20", never drawn as 0.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from urllib.parse import urlencode

from aiohttp import web
from pydantic import ValidationError

from notify.console.charts import bar_chart, line_chart
from notify.console.i18n import CHANNEL_LABELS, label
from notify.console.pages import Viewer, console_page
from notify.errors import BROADCAST_NOT_FOUND, NotFound
from notify.models import Role
from notify.stats.api import RangeQuery
from notify.stats.growth import follower_growth
from notify.stats.report import DEFINITIONS, combined
from notify.stats.schemas import Figures
from notify.stats.service import broadcast_stats, city_zone, summaries_between
from notify.web.api import path_id
from notify.web.errors import invalid_from_validation
from notify.web.keys import CITY, DB

routes = web.RouteTableDef()
READERS = (Role.ANALYST, Role.PR)
MAX_WARD_BROADCASTS = 60  # ward breakdown over a range: one query set per broadcast


def _bar(name: str, figures: Figures) -> tuple[str, float | None, str]:
    """A chart row with the statistics' own text ("12.5%", "<20", "-")."""
    rate = None if figures.open_rate is None else float(figures.open_rate)
    text = figures.open_rate_display
    if rate is None and figures.opens_display not in ("", "-"):
        text = figures.opens_display  # e.g. "<20": say why there is no rate
    return name, rate, text or "-"


def by_key(rows: list[Figures]) -> list[tuple[str, Figures]]:
    """Per ward (or language) over every channel, in key order."""
    groups: dict[str, list[Figures]] = defaultdict(list)
    for figures in rows:
        groups[figures.key or "unknown"].append(figures)
    return [(key, combined(group, key=key)) for key, group in sorted(groups.items())]


def _window(request: web.Request) -> tuple[dt.date, dt.date]:
    raw = {k: v for k, v in request.query.items() if k in ("from", "to") and v}
    try:
        query = RangeQuery.model_validate(raw)
    except ValidationError as exc:
        raise invalid_from_validation(exc) from exc
    today = dt.datetime.now(city_zone(request.app[CITY])).date()
    return query.window(today)


@routes.get("/console/stats")
@console_page(*READERS)
async def stats_overview(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    city = request.app[CITY]
    start, end = _window(request)
    zone = city_zone(city)
    offset = dt.datetime.now(zone).utcoffset() or dt.timedelta()
    async with request.app[DB].sessionmaker() as session:
        summaries = await summaries_between(session, city, start, end)
        growth = await follower_growth(session, start, end, city.city.timezone, offset)
        ward_figures: list[Figures] = []
        for summary in summaries[-MAX_WARD_BROADCASTS:]:
            detail = await broadcast_stats(session, city, summary.broadcast_id)
            ward_figures.extend(detail.by_ward if detail else [])

    def ward_name(code: str) -> str:
        ward = city.ward(code)
        return viewer.t("区不明", "Unknown") if ward is None else viewer.t(ward.ja, ward.en)

    by_channel = [
        combined([f for s in summaries for f in s.channels if f.channel == ch], channel=ch)
        for ch in ("line", "fcm", "email")
        if any(f.channel == ch for s in summaries for f in s.channels)
    ]
    by_ward = by_key(ward_figures)
    charts = {
        "broadcast": bar_chart(
            [_bar(s.title, s.total) for s in summaries],
            title=viewer.t("配信ごとの開封率", "Open rate by broadcast"),
            description=viewer.t(
                "各配信の全チャネル合計の開封率。値は下の表にもあります。",
                "Open rate of each broadcast over all channels; the table below has the values.",
            ),
        ),
        "channel": bar_chart(
            [_bar(label(CHANNEL_LABELS, f.channel, viewer.lang), f) for f in by_channel],
            title=viewer.t("チャネル別の開封率", "Open rate by channel"),
            description=viewer.t("期間内の全配信の合計。", "All broadcasts in the period."),
        ),
        "ward": bar_chart(
            [_bar(ward_name(code), f) for code, f in by_ward],
            title=viewer.t("区別の開封率", "Open rate by ward"),
            description=viewer.t("期間内の全配信の合計。", "All broadcasts in the period."),
        ),
    }
    series: dict[str, list[tuple[dt.date, float]]] = defaultdict(list)
    for point in growth.series:
        series[point.channel].append((point.day, float(point.total)))
    charts["growth"] = line_chart(
        series,
        title=viewer.t("登録者数の推移", "Followers over time"),
        description=viewer.t(
            "LINE友だち・アプリ端末・メール登録の日ごとの数。",
            "LINE friends, app devices and email subscribers per day.",
        ),
        labels={ch: label(CHANNEL_LABELS, ch, viewer.lang) for ch in series},
    )
    csv_query = urlencode({"from": start.isoformat(), "to": end.isoformat()})
    return viewer.page(
        request,
        "stats.html",
        start=start,
        end=end,
        summaries=summaries,
        by_channel=by_channel,
        by_ward=[(ward_name(code), f) for code, f in by_ward],
        growth=growth,
        growth_latest={p.channel: p for p in growth.series},
        charts=charts,
        csv_url=f"/api/stats/report.csv?{csv_query}",
        definitions=DEFINITIONS,
    )


@routes.get("/console/stats/{id:\\d+}")
@console_page(*READERS)
async def stats_detail(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    city = request.app[CITY]
    async with request.app[DB].sessionmaker() as session:
        broadcast_id = path_id(request.match_info["id"], BROADCAST_NOT_FOUND)
        stats = await broadcast_stats(session, city, broadcast_id)
    if stats is None:
        raise NotFound(BROADCAST_NOT_FOUND)

    def ward_name(code: str | None) -> str:
        ward = city.ward(code or "")
        return viewer.t("区不明", "Unknown") if ward is None else viewer.t(ward.ja, ward.en)

    def language_name(code: str) -> str:
        lang = next((x for x in city.languages if x.code == code), None)
        return code if lang is None else viewer.t(lang.ja, lang.en)

    wards = by_key(stats.by_ward)
    ward_chart = bar_chart(
        [_bar(ward_name(code), f) for code, f in wards],
        title=viewer.t("区別の開封率", "Open rate by ward"),
        description=viewer.t("この配信の区ごとの開封率。", "This broadcast's open rate by ward."),
    )
    return viewer.page(
        request,
        "stats_detail.html",
        stats=stats,
        channel_rows=[(label(CHANNEL_LABELS, f.channel, viewer.lang), f) for f in stats.channels]
        + [(viewer.t("合計", "Total"), stats.total)],
        ward_rows=[(ward_name(code), f) for code, f in wards],
        language_rows=[(language_name(code), f) for code, f in by_key(stats.by_language)],
        ward_chart=ward_chart,
        definitions=stats.definitions,
    )
