"""HTTP API of the stats area: open reports and tracking links in, statistics out."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from notify.errors import BROADCAST_NOT_FOUND, Conflict, Forbidden, InvalidInput, NotFound
from notify.models import Broadcast, Role
from notify.stats import metrics, tracking
from notify.stats.csv_report import report_rows, to_csv
from notify.stats.events import broadcast_exists, record_open, was_targeted
from notify.stats.growth import follower_growth
from notify.stats.proxies import is_privacy_proxy
from notify.stats.schemas import BroadcastStats, BroadcastSummary, Growth
from notify.stats.service import broadcast_stats, city_zone, summaries_between
from notify.stats.tables import OpenKind
from notify.web.api import ApiRoutes, Call, path_id
from notify.web.keys import CITY, DB, SETTINGS

routes = ApiRoutes("stats")
READERS = [Role.ANALYST, Role.PR]
MAX_RANGE_DAYS = 400


# --- app open reports -----------------------------------------------------------------------


class AppOpenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    broadcast_id: int = Field(gt=0, lt=2**53)
    ref: Annotated[str, Field(min_length=8, max_length=48, pattern=r"^[A-Za-z0-9_-]+$")]


class AppOpenOut(BaseModel):
    broadcast_id: int
    counted: bool


@routes.post(
    "/api/app/opens",
    summary="The app reports that a notification was opened (once per device and broadcast)",
    auth="device",
    body=AppOpenIn,
    response=AppOpenOut,
    status=201,
    errors=[403, 404, 409],
)
async def report_app_open(request: web.Request, call: Call[AppOpenIn, None]) -> AppOpenOut:
    assert call.principal is not None and call.principal.endpoint_id is not None
    device = call.principal.endpoint_id
    pair = tracking.verify_app_ref(request.app[SETTINGS], call.body.ref)
    if (
        pair is None
        or pair.broadcast_id != call.body.broadcast_id
        or pair.endpoint_id not in (device, tracking.ANY_DEVICE)
    ):
        raise Forbidden("開封報告の署名が不正です / open report reference is not valid")
    async with request.app[DB].transaction() as session:
        if not await broadcast_exists(session, pair.broadcast_id):
            raise NotFound(BROADCAST_NOT_FOUND)
        if pair.endpoint_id == tracking.ANY_DEVICE and not await was_targeted(
            session, pair.broadcast_id, device, "fcm"
        ):
            raise Forbidden("この端末には配信していません / not sent to this device")
        stored = await record_open(session, pair.broadcast_id, device, "fcm", OpenKind.OPEN)
    if not stored:
        raise Conflict("この開封は報告済みです / this open was already reported")
    return AppOpenOut(broadcast_id=pair.broadcast_id, counted=True)


# --- email pixel and click-through ----------------------------------------------------------


@routes.get(
    "/o/{token}.gif",
    summary="Email open pixel (1x1 GIF); privacy-proxy fetches are flagged",
    auth="public",
    content_type="image/gif",
    errors=[404],
)
async def open_pixel(request: web.Request, call: Call[None, None]) -> web.Response:
    pair = tracking.verify_pixel(request.app[SETTINGS], call.path["token"])
    if pair is None:
        raise NotFound("リンクが無効です / unknown link")
    proxy = is_privacy_proxy(request.headers.get("User-Agent"), request.remote)
    kind = OpenKind.PROXY_OPEN if proxy else OpenKind.OPEN
    async with request.app[DB].transaction() as session:
        if not await broadcast_exists(session, pair.broadcast_id):
            raise NotFound("リンクが無効です / unknown link")
        await record_open(session, pair.broadcast_id, pair.endpoint_id, "email", kind)
    return web.Response(
        body=tracking.PIXEL_GIF,
        content_type="image/gif",
        headers={"Cache-Control": "no-store, private", "Referrer-Policy": "no-referrer"},
    )


class ClickQuery(BaseModel):
    u: Annotated[str, Field(min_length=8, max_length=tracking.MAX_URL_CHARS)]


@routes.get(
    "/c/{token}",
    summary="Email click-through: counts the click, redirects to the broadcast's own link",
    auth="public",
    query=ClickQuery,
    content_type="text/plain",
    status=302,
    errors=[403, 404],
)
async def click_through(request: web.Request, call: Call[None, ClickQuery]) -> web.Response:
    pair = tracking.verify_click(request.app[SETTINGS], call.path["token"])
    if pair is None:
        raise NotFound("リンクが無効です / unknown link")
    async with request.app[DB].transaction() as session:
        broadcast = await session.get(Broadcast, pair.broadcast_id)
        if broadcast is None:
            raise NotFound("リンクが無効です / unknown link")
        if not tracking.click_target_allowed(broadcast.content or {}, call.query.u):
            raise Forbidden("このリンク先には転送できません / link target is not in this message")
        await record_open(session, pair.broadcast_id, pair.endpoint_id, "email", OpenKind.CLICK)
    return web.Response(
        status=302,
        headers={
            "Location": tracking.location_of(call.query.u),
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
        },
    )


# --- statistics -----------------------------------------------------------------------------


class RangeQuery(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    start: dt.date | None = Field(default=None, alias="from", description="first day (local)")
    end: dt.date | None = Field(default=None, alias="to", description="last day (local)")

    def window(self, today: dt.date) -> tuple[dt.date, dt.date]:
        end = self.end or today
        start = self.start or end - dt.timedelta(days=30)
        if start > end:
            raise InvalidInput("期間が逆です / from is after to", fields={"from": "after to"})
        if (end - start).days > MAX_RANGE_DAYS:
            raise InvalidInput(
                f"期間は{MAX_RANGE_DAYS}日以内 / at most {MAX_RANGE_DAYS} days",
                fields={"from": "range too long"},
            )
        return start, end


def _today(request: web.Request) -> dt.date:
    return dt.datetime.now(city_zone(request.app[CITY])).date()


@routes.get(
    "/api/stats/broadcasts",
    summary="Per broadcast and channel: targeted, sent, delivered, failed, opens, open rate",
    roles=READERS,
    query=RangeQuery,
    response=list[BroadcastSummary],
)
async def list_broadcast_stats(
    request: web.Request, call: Call[None, RangeQuery]
) -> list[BroadcastSummary]:
    start, end = call.query.window(_today(request))
    async with request.app[DB].sessionmaker() as session:
        return await summaries_between(session, request.app[CITY], start, end)


@routes.get(
    "/api/stats/broadcasts/{broadcast_id:\\d+}",
    summary="One broadcast: per channel, by ward, by language, per day",
    roles=READERS,
    response=BroadcastStats,
    errors=[404],
)
async def get_broadcast_stats(request: web.Request, call: Call[None, None]) -> BroadcastStats:
    async with request.app[DB].sessionmaker() as session:
        broadcast_id = path_id(call.path["broadcast_id"], BROADCAST_NOT_FOUND)
        stats = await broadcast_stats(session, request.app[CITY], broadcast_id)
    if stats is None:
        raise NotFound(BROADCAST_NOT_FOUND)
    return stats


@routes.get(
    "/api/stats/report.csv",
    summary="The city's report (配信日時 / 内容 / 配信数 / 開封数 / 開封率), UTF-8 with BOM",
    roles=READERS,
    query=RangeQuery,
    content_type="text/csv",
)
async def report_csv(request: web.Request, call: Call[None, RangeQuery]) -> web.Response:
    start, end = call.query.window(_today(request))
    async with request.app[DB].sessionmaker() as session:
        summaries = await summaries_between(session, request.app[CITY], start, end)
    body = to_csv(report_rows(summaries, city_zone(request.app[CITY])))
    name = f"haishin_{start:%Y%m%d}_{end:%Y%m%d}.csv"
    return web.Response(
        body=body,
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{name}"',
        },
    )


@routes.get(
    "/api/stats/followers",
    summary="Follower growth per channel and day (LINE friends, app devices, email)",
    roles=READERS,
    query=RangeQuery,
    response=Growth,
)
async def get_follower_growth(request: web.Request, call: Call[None, RangeQuery]) -> Growth:
    start, end = call.query.window(_today(request))
    city = request.app[CITY]
    zone = city_zone(city)
    offset = dt.datetime.now(zone).utcoffset() or dt.timedelta()
    async with request.app[DB].sessionmaker() as session:
        return await follower_growth(session, start, end, city.city.timezone, offset)


# --- operations -----------------------------------------------------------------------------


@routes.get(
    "/metrics",
    summary="Prometheus metrics: messages, provider errors, send latency, queue depth, mode",
    auth="public",
    content_type="text/plain",
)
async def prometheus_metrics(request: web.Request, call: Call[None, None]) -> web.Response:
    return await metrics.metrics_response(request)
