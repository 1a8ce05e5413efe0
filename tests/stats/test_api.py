"""Statistics API: who may read, ranges, the per-broadcast list, follower growth by day."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp.test_utils import TestClient

from notify.db import Database
from notify.models import Consent, Endpoint, EndpointStatus, Resident
from notify.stats import jobs as stats_jobs
from notify.stats.tables import LineFollowerStat
from notify.web.keys import DB
from tests.stats.conftest import add_deliveries, make_broadcast, make_targets

JST = ZoneInfo("Asia/Tokyo")


async def test_only_analysts_pr_and_admins_read_statistics(
    client: TestClient[Any, Any], staff_headers: dict[str, dict[str, str]]
) -> None:
    for path in ("/api/stats/broadcasts", "/api/stats/report.csv", "/api/stats/followers"):
        assert (await client.get(path)).status == 401
        assert (await client.get(path, headers=staff_headers["approver"])).status == 403
        assert (await client.get(path, headers=staff_headers["disaster"])).status == 403
        for reader in ("analyst", "pr", "admin"):
            resp = await client.get(path, headers=staff_headers[reader])
            assert resp.status == 200, (path, reader)
    resp = await client.get("/api/stats/broadcasts/4242", headers=staff_headers["analyst"])
    assert resp.status == 404


async def test_ranges_are_validated(
    client: TestClient[Any, Any], staff_headers: dict[str, dict[str, str]]
) -> None:
    analyst = staff_headers["analyst"]
    for query, field in (
        ("from=2025-05-01&to=2025-04-01", "from"),
        ("from=2024-01-01&to=2025-04-01", "from"),
        ("from=yesterday", "from"),
        ("to=2025-02-30", "to"),
    ):
        resp = await client.get(f"/api/stats/broadcasts?{query}", headers=analyst)
        assert resp.status == 422, query
        assert field in (await resp.json())["error"]["fields"], query


async def test_list_holds_the_broadcasts_that_sent_within_the_range(
    client: TestClient[Any, Any], staff_headers: dict[str, dict[str, str]]
) -> None:
    db: Database = client.server.app[DB]
    april = dt.datetime(2025, 4, 1, 9, 0, tzinfo=JST)
    in_range = await make_broadcast(db, "4月号", started_at=april)
    late_evening = await make_broadcast(
        db, "4月30日夜", started_at=dt.datetime(2025, 4, 30, 23, 30, tzinfo=JST)
    )
    may = await make_broadcast(db, "5月号", started_at=april + dt.timedelta(days=31))
    await make_broadcast(db, "未送信", started_at=april)  # nothing delivered: not listed
    targets = await make_targets(db, "fcm", 3)
    for broadcast in (in_range, late_evening, may):
        await add_deliveries(db, broadcast, targets)
    resp = await client.get(
        "/api/stats/broadcasts?from=2025-04-01&to=2025-04-30", headers=staff_headers["analyst"]
    )
    assert resp.status == 200
    listed = await resp.json()
    assert [item["broadcast_id"] for item in listed] == [in_range, late_evening]
    assert [c["channel"] for c in listed[0]["channels"]] == ["line", "fcm", "email"]
    line, fcm, _email = listed[0]["channels"]
    assert (fcm["targeted"], fcm["sent"], fcm["delivered"], fcm["opens"]) == (3, 3, 3, 0)
    assert line["targeted"] == 0 and line["opens_display"] == "-"  # chosen, nobody on LINE
    assert listed[0]["total"]["delivered"] == 3


def _at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), JST).astimezone(dt.UTC)


async def _endpoint(db: Database, channel: str, **fields: Any) -> None:
    async with db.transaction() as session:
        resident = Resident(public_id=str(uuid.uuid4()), ward_code="141313")
        session.add(resident)
        await session.flush()
        fields.setdefault("consent", Consent.GRANTED)
        session.add(
            Endpoint(
                resident_id=resident.id,
                channel=channel,
                address=f"{channel}-{secrets.token_hex(8)}",
                **fields,
            )
        )


async def test_follower_growth_per_channel_and_local_day(
    client: TestClient[Any, Any], staff_headers: dict[str, dict[str, str]]
) -> None:
    db: Database = client.server.app[DB]
    d0 = dt.date(2025, 4, 10)
    d1, d2, d3 = (d0 + dt.timedelta(days=n) for n in (1, 2, 3))
    before = d0 - dt.timedelta(days=10)
    line = "line"
    # LINE friends: one from before the range, one on d0, one at 00:30 on d1 (still d0 in
    # UTC) who blocks on d2, and one who came and went before the range.
    await _endpoint(db, line, created_at=_at(before, 12), updated_at=_at(before, 12))
    await _endpoint(db, line, created_at=_at(d0, 12), updated_at=_at(d0, 12))
    await _endpoint(
        db, line, created_at=_at(d1, 0, 30), updated_at=_at(d2, 8), status=EndpointStatus.BLOCKED
    )
    await _endpoint(
        db,
        line,
        created_at=_at(before, 1),
        updated_at=_at(d0 - dt.timedelta(days=2), 1),
        status=EndpointStatus.BLOCKED,
    )
    # App devices: one on d1, one never consented, one on d0 pruned on d3.
    await _endpoint(db, "fcm", created_at=_at(d1, 9), updated_at=_at(d1, 9))
    await _endpoint(
        db, "fcm", created_at=_at(d0, 9), updated_at=_at(d0, 9), consent=Consent.PENDING
    )
    await _endpoint(
        db, "fcm", created_at=_at(d0, 9), updated_at=_at(d3, 9), status=EndpointStatus.PRUNED
    )
    # Email: confirmed on d2; confirmed before and withdrawn on d1; never confirmed.
    await _endpoint(
        db, "email", created_at=_at(d1, 9), consent_at=_at(d2, 9), updated_at=_at(d2, 9)
    )
    await _endpoint(
        db,
        "email",
        created_at=_at(before, 9),
        consent_at=_at(before, 9),
        withdrawn_at=_at(d1, 9),
        updated_at=_at(d1, 9),
        consent=Consent.WITHDRAWN,
    )
    await _endpoint(
        db, "email", created_at=_at(d0, 9), updated_at=_at(d0, 9), consent=Consent.PENDING
    )
    async with db.transaction() as session:
        session.add(
            LineFollowerStat(day=d1, status="ready", followers=120, targeted_reaches=100, blocks=7)
        )

    resp = await client.get(
        f"/api/stats/followers?from={d0}&to={d3}", headers=staff_headers["analyst"]
    )
    assert resp.status == 200, await resp.text()
    growth = await resp.json()
    series = {
        (p["channel"], p["day"]): (p["gained"], p["lost"], p["total"]) for p in growth["series"]
    }
    expected = {
        "line": [(1, 0, 2), (1, 0, 3), (0, 1, 2), (0, 0, 2)],
        "fcm": [(1, 0, 1), (1, 0, 2), (0, 0, 2), (0, 1, 1)],
        "email": [(0, 0, 1), (0, 1, 0), (1, 0, 1), (0, 0, 1)],
    }
    for channel, points in expected.items():
        assert [series[(channel, str(day))] for day in (d0, d1, d2, d3)] == points, channel
    assert growth["line_insight"] == [
        {"day": str(d1), "status": "ready", "followers": 120, "targeted_reaches": 100, "blocks": 7}
    ]


def test_the_insight_job_is_a_cron_job_every_ten_minutes() -> None:
    (job,) = stats_jobs.CRON_JOBS
    assert job.coroutine is stats_jobs.read_line_insight
    assert job.minute == set(range(0, 60, 10))
    assert stats_jobs.read_line_insight in stats_jobs.FUNCTIONS
