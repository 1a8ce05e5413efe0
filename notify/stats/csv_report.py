"""The city's report as CSV: 配信日時 / 内容 / 配信数 / 開封数 / 開封率, one row per message.

A resident receives a LINE message, an app notification and an email as three messages, and
LINE may withhold its opens ("<20") while the others are exact, so each (broadcast, channel)
is one row, its channel named in 内容: "タイトル（LINE）". UTF-8 with a BOM and CRLF line
ends, so Excel on a staff PC opens the Japanese correctly.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable
from zoneinfo import ZoneInfo

from notify.stats.schemas import BroadcastSummary

HEADER = ("配信日時", "内容", "配信数", "開封数", "開封率")
CHANNEL_NAMES_JA = {"line": "LINE", "fcm": "アプリ", "email": "メール", "all": "全経路"}
BOM = "\ufeff"


def _when(moment: dt.datetime | None, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).strftime("%Y/%m/%d %H:%M") if moment else ""


def report_rows(summaries: Iterable[BroadcastSummary], tz: ZoneInfo) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for summary in summaries:
        for figures in summary.channels:
            channel = CHANNEL_NAMES_JA.get(figures.channel, figures.channel)
            rows.append(
                (
                    _when(summary.sent_at, tz),
                    f"{summary.title}（{channel}）",
                    str(figures.delivered),
                    figures.opens_display,
                    figures.open_rate_display,
                )
            )
    return rows


def _safe(cell: str) -> str:
    # A title starting with = + - @ would run as a formula in Excel (CSV injection).
    return "'" + cell if cell[:1] in ("=", "+", "-", "@", "\t", "\r") and cell != "-" else cell


def to_csv(rows: Iterable[tuple[str, ...]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(HEADER)
    for row in rows:
        writer.writerow([_safe(cell) for cell in row])
    return (BOM + buffer.getvalue()).encode("utf-8")
