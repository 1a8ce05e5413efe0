"""Exactness: a known set of deliveries and opens, replayed through the hub's real endpoints
(app open reports, email pixel and click, LINE insight read by the worker from the sandbox),
gives exactly the expected counts and percentages — in the JSON API and in the CSV.

Deliveries are inserted as the delivery engine leaves them (its `deliveries` rows and LINE
`delivery_batches` with their aggregation units); everything after that goes over HTTP.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import aiohttp
from aiohttp.test_utils import TestClient
from arq import create_pool

from notify.db import Database
from notify.queue_redis import queue_redis_settings
from notify.settings import Settings
from notify.stats import jobs as stats_jobs
from notify.stats import tracking
from notify.stats.events import record_bounce
from sandbox.line.server import LineSandbox
from tests.plugins.workers import run_burst_worker
from tests.stats.conftest import (
    Target,
    add_deliveries,
    line_batch,
    make_broadcast,
    make_targets,
)

JST = ZoneInfo("Asia/Tokyo")
KAWASAKI, SAIWAI = "141313", "141321"
LINK = "https://city.example.jp/kenshin"
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15"


async def _sandbox_opens(sandbox: LineSandbox, probability: float) -> None:
    async with aiohttp.ClientSession() as http:
        resp = await http.post(
            f"{sandbox.url}/_sandbox/config", json={"open_probability": probability}
        )
        assert resp.status == 200


async def _app_open(hub: TestClient[Any, Any], settings: Settings, b: int, t: Target) -> None:
    ref = tracking.broadcast_open_ref(settings, b)  # what the delivery engine sends
    resp = await hub.post(
        "/api/app/opens",
        json={"broadcast_id": b, "ref": ref},
        headers={"Authorization": f"Bearer {t.credential}"},
    )
    assert resp.status == 201, await resp.text()


async def _pixel(
    hub: TestClient[Any, Any], settings: Settings, b: int, t: Target, agent: str
) -> None:
    url = tracking.email_links(settings, b, t.endpoint_id)["open_pixel_url"]
    resp = await hub.get(url.removeprefix(settings.public_url), headers={"User-Agent": agent})
    assert resp.status == 200


async def _click(hub: TestClient[Any, Any], settings: Settings, b: int, t: Target) -> None:
    prefix = tracking.email_links(settings, b, t.endpoint_id)["click_url_prefix"]
    resp = await hub.get(
        prefix.removeprefix(settings.public_url) + quote(LINK, safe=""), allow_redirects=False
    )
    assert resp.status == 302 and resp.headers["Location"] == LINK


async def _stats_startup(ctx: dict[str, Any]) -> None:
    # worker.py's start-up builds the database the same way; other areas' hooks are not ours.
    ctx["db"] = Database.from_settings(ctx["settings"])


async def _stats_shutdown(ctx: dict[str, Any]) -> None:
    await ctx["db"].close()


async def _run_insight_job(settings: Settings) -> dict[str, Any]:
    """The stats cron job, run by a real arq worker (burst) against the LINE sandbox."""
    assert settings.redis_url
    pool = await create_pool(queue_redis_settings(settings.redis_url))
    try:
        job = await pool.enqueue_job("read_line_insight")
        assert job is not None
        await run_burst_worker(
            settings,
            poll_delay=0.02,
            functions=stats_jobs.FUNCTIONS,
            on_startup=_stats_startup,
            on_shutdown=_stats_shutdown,
        )
        result: dict[str, Any] = await job.result(timeout=5)
    finally:
        await pool.aclose()
    return result


def _row(f: dict[str, Any]) -> tuple[Any, ...]:
    return (
        f["channel"],
        f["key"],
        f["targeted"],
        f["sent"],
        f["failed"],
        f["pending"],
        f["bounced"],
        f["delivered"],
        f["opens_display"],
        f["clicks_display"],
        f["proxy_opens"],
        f["open_rate_display"],
    )


async def test_replayed_deliveries_and_opens_give_exact_statistics(
    hub: TestClient[Any, Any],
    hub_db: Database,
    stats_settings: Settings,
    line_sandbox: LineSandbox,
    staff_headers: dict[str, dict[str, str]],
) -> None:
    settings = stats_settings
    today = dt.datetime.now(JST).date()
    day_before = today - dt.timedelta(days=1)
    started = dt.datetime.combine(day_before, dt.time(10, 0), JST)
    a = await make_broadcast(
        hub_db,
        "健診のお知らせ",
        content={"ja": {"email": {"html": f'<a href="{LINK}">詳細</a>'}}},
        started_at=started,
    )
    b = await make_broadcast(
        hub_db, "粗大ごみ収集日の変更", channels=("line", "fcm"), started_at=started
    )

    # --- broadcast A, LINE: 40 in Kawasaki-ku (25 open), 8 in Saiwai-ku (all open: < 20) ---
    line_k = await make_targets(hub_db, "line", 40, ward_code=KAWASAKI)
    line_s = await make_targets(hub_db, "line", 8, ward_code=SAIWAI)
    line_failed = await make_targets(hub_db, "line", 2, ward_code=KAWASAKI)
    await add_deliveries(hub_db, a, line_k + line_s, sent_at=started)
    await add_deliveries(hub_db, a, line_failed, "failed", error_code="blocked")
    await _sandbox_opens(line_sandbox, 1.0)
    await line_batch(hub_db, line_sandbox, a, line_k[:25], f"b{a}_{KAWASAKI}", ward_code=KAWASAKI)
    await line_batch(hub_db, line_sandbox, a, line_s, f"b{a}_{SAIWAI}", ward_code=SAIWAI)
    await _sandbox_opens(line_sandbox, 0.0)
    await line_batch(hub_db, line_sandbox, a, line_k[25:], f"b{a}_{KAWASAKI}", ward_code=KAWASAKI)

    # --- broadcast A, app: 16 accepted (10 + 6; 12 ja + 4 en), 1 failed, 1 pending; 1 open ---
    fcm_k = await make_targets(hub_db, "fcm", 10, ward_code=KAWASAKI)
    fcm_s_ja = await make_targets(hub_db, "fcm", 2, ward_code=SAIWAI)
    fcm_s_en = await make_targets(hub_db, "fcm", 4, ward_code=SAIWAI, language="en")
    fcm_failed = await make_targets(hub_db, "fcm", 1)
    fcm_pending = await make_targets(hub_db, "fcm", 1)
    await add_deliveries(hub_db, a, fcm_k[:5], sent_at=started)
    await add_deliveries(
        hub_db, a, fcm_k[5:] + fcm_s_ja + fcm_s_en, sent_at=started + dt.timedelta(days=1)
    )
    await add_deliveries(hub_db, a, fcm_failed, "failed", error_code="UNREGISTERED")
    await add_deliveries(hub_db, a, fcm_pending, "queued")
    await _app_open(hub, settings, a, fcm_k[0])  # 1 / 16 = 6.25 % → 6.3 %
    # the pending device opening anyway (not sent yet, so not counted)
    await _app_open(hub, settings, a, fcm_pending[0])

    # --- broadcast A, email: 9 accepted, 1 bounced later (8 delivered), 1 failed ----------
    mail = await make_targets(hub_db, "email", 9, ward_code=KAWASAKI)
    mail_failed = await make_targets(hub_db, "email", 1, ward_code=KAWASAKI)
    await add_deliveries(hub_db, a, mail, sent_at=started)
    await add_deliveries(hub_db, a, mail_failed, "failed", error_code="550")
    async with hub_db.transaction() as session:
        await record_bounce(session, a, mail[8].endpoint_id)
    reader, apple, clicker = mail[0], mail[1], mail[2]
    for _ in range(2):
        await _pixel(hub, settings, a, reader, IPHONE)  # a person, twice: one open
    await _click(hub, settings, a, reader)  # and a click: still one open
    await _pixel(hub, settings, a, apple, "Mozilla/5.0")  # Apple MPP preload: proxy, not open
    await _pixel(hub, settings, a, mail_failed[0], IPHONE)  # never sent: not counted
    await _pixel(hub, settings, a, mail[8], IPHONE)  # bounced: not delivered, not counted
    del clicker

    # --- broadcast B: LINE 10 in one unit (all open, withheld), app 3 accepted, none open --
    line_b = await make_targets(hub_db, "line", 10, ward_code=SAIWAI)
    fcm_b = await make_targets(hub_db, "fcm", 3, ward_code=SAIWAI)
    await add_deliveries(hub_db, b, line_b + fcm_b, sent_at=started)
    await _sandbox_opens(line_sandbox, 1.0)
    await line_batch(hub_db, line_sandbox, b, line_b, f"b{b}")

    # --- LINE statistics: the worker's job reads the sandbox ---------------------------------
    job = await _run_insight_job(settings)
    assert (job["units_read"], job["units_withheld"], job["errors"]) == (3, 2, 0)

    analyst = staff_headers["analyst"]
    resp = await hub.get(f"/api/stats/broadcasts/{a}", headers=analyst)
    assert resp.status == 200, await resp.text()
    stats = await resp.json()
    assert [_row(f) for f in stats["channels"]] == [
        ("line", None, 50, 48, 2, 0, 0, 48, "25〜44", "<39", None, "-"),
        ("fcm", None, 18, 16, 1, 1, 0, 16, "1", "-", None, "6.3%"),
        ("email", None, 10, 9, 1, 0, 1, 8, "1", "1", 1, "12.5%"),
    ]
    assert _row(stats["total"]) == ("all", None, 78, 73, 4, 1, 1, 72, "27〜46", "1〜39", 1, "-")
    line = stats["channels"][0]
    assert line["opens"] is None and line["opens_status"] == "withheld"
    assert line["opens_range"] == [25, 44] and line["open_rate"] is None
    fcm = stats["channels"][1]
    assert (fcm["opens"], fcm["open_rate"]) == (1, "6.3")
    assert stats["channels"][2]["open_rate"] == "12.5"
    assert [_row(f) for f in stats["by_ward"]] == [
        ("line", KAWASAKI, 42, 40, 2, 0, 0, 40, "25", "<20", None, "62.5%"),
        ("line", SAIWAI, 8, 8, 0, 0, 0, 8, "<20", "<20", None, "-"),
        ("fcm", "141313", 12, 10, 1, 1, 0, 10, "1", "-", None, "10.0%"),
        ("fcm", SAIWAI, 6, 6, 0, 0, 0, 6, "0", "-", None, "0.0%"),
        ("email", KAWASAKI, 10, 9, 1, 0, 1, 8, "1", "1", 1, "12.5%"),
    ]
    assert [_row(f) for f in stats["by_language"]] == [
        ("line", "ja", 50, 48, 2, 0, 0, 48, "-", "-", None, "-"),
        ("fcm", "en", 4, 4, 0, 0, 0, 4, "0", "-", None, "0.0%"),
        ("fcm", "ja", 14, 12, 1, 1, 0, 12, "1", "-", None, "8.3%"),
        ("email", "ja", 10, 9, 1, 0, 1, 8, "1", "1", 1, "12.5%"),
    ]
    assert stats["failures"] == [
        {"channel": "email", "error_code": "550", "count": 1},
        {"channel": "fcm", "error_code": "UNREGISTERED", "count": 1},
        {"channel": "line", "error_code": "blocked", "count": 2},
    ]
    daily = {(p["day"], p["channel"]): (p["sent"], p["new_opens"]) for p in stats["daily"]}
    assert daily == {
        (day_before.isoformat(), "line"): (48, None),
        (day_before.isoformat(), "fcm"): (5, 0),
        (day_before.isoformat(), "email"): (9, 0),
        (today.isoformat(), "fcm"): (11, 1),
        (today.isoformat(), "email"): (0, 1),
    }

    resp = await hub.get(f"/api/stats/broadcasts/{b}", headers=staff_headers["pr"])
    assert resp.status == 200
    stats_b = await resp.json()
    assert [_row(f) for f in stats_b["channels"]] == [
        ("line", None, 10, 10, 0, 0, 0, 10, "<20", "<20", None, "-"),
        ("fcm", None, 3, 3, 0, 0, 0, 3, "0", "-", None, "0.0%"),
    ]

    resp = await hub.get("/api/stats/report.csv", headers=analyst)
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/csv; charset=utf-8"
    body = await resp.read()
    when = started.strftime("%Y/%m/%d %H:%M")
    assert (
        body
        == (
            "\ufeff配信日時,内容,配信数,開封数,開封率\r\n"
            f"{when},健診のお知らせ（LINE）,48,25〜44,-\r\n"
            f"{when},健診のお知らせ（アプリ）,16,1,6.3%\r\n"
            f"{when},健診のお知らせ（メール）,8,1,12.5%\r\n"
            f"{when},粗大ごみ収集日の変更（LINE）,10,<20,-\r\n"
            f"{when},粗大ごみ収集日の変更（アプリ）,3,0,0.0%\r\n"
        ).encode()
    )
