"""`GET /metrics`: what workers recorded in Redis, the arq queue, and the mode, as Prometheus
reads them."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from arq import create_pool
from prometheus_client.parser import text_string_to_metric_families

from channels.base import DeliveryResult
from notify.db import utcnow
from notify.queue_redis import queue_redis_settings
from notify.settings import Settings
from notify.stats.metrics import MODE_READER, record_provider_error, record_send
from notify.web.keys import DB
from server import create_app
from tests.stats.conftest import add_deliveries, make_broadcast, make_targets


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


async def test_metrics_show_sends_errors_latency_and_queue(
    client: TestClient[Any, Any], settings: Settings
) -> None:
    assert settings.redis_url
    db = client.server.app[DB]
    recent = await make_broadcast(db)
    old = await make_broadcast(db, started_at=utcnow() - dt.timedelta(days=3))
    await add_deliveries(db, recent, await make_targets(db, "line", 3))
    await add_deliveries(db, recent, await make_targets(db, "fcm", 2), "failed")
    await add_deliveries(db, old, await make_targets(db, "email", 4))
    pool = await create_pool(queue_redis_settings(settings.redis_url))
    try:
        # What two workers recorded (any process, any machine: it is all in Redis).
        fcm_results = [
            DeliveryResult.sent("m1"),
            DeliveryResult.sent("m2"),
            DeliveryResult.sent("m3"),
            DeliveryResult.permanent("UNREGISTERED", prune=True),
            DeliveryResult.transient("UNAVAILABLE"),
        ]
        await record_send(pool, "fcm", fcm_results, 0.2)
        await record_send(pool, "fcm", [DeliveryResult.sent("m4")], 0.02)
        await record_send(pool, "line", [DeliveryResult.sent()] * 500, 45.0)
        await record_provider_error(pool, "email", "smtp_connect")
        # The queue: two jobs due now, one deferred an hour.
        await pool.enqueue_job("no_such_job_a")
        await pool.enqueue_job("no_such_job_b")
        await pool.enqueue_job("no_such_job_c", _defer_by=3600)
    finally:
        await pool.aclose()

    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = _samples(await resp.text())
    assert samples[("hub_messages_total", (("channel", "fcm"), ("outcome", "sent")))] == 4
    assert samples[("hub_messages_total", (("channel", "fcm"), ("outcome", "permanent")))] == 1
    assert samples[("hub_messages_total", (("channel", "fcm"), ("outcome", "transient")))] == 1
    assert samples[("hub_messages_total", (("channel", "line"), ("outcome", "sent")))] == 500
    errors = "hub_provider_errors_total"
    assert samples[(errors, (("channel", "fcm"), ("code", "UNREGISTERED")))] == 1
    assert samples[(errors, (("channel", "fcm"), ("code", "UNAVAILABLE")))] == 1
    assert samples[(errors, (("channel", "email"), ("code", "smtp_connect")))] == 1
    bucket = "hub_send_latency_seconds_bucket"
    assert samples[(bucket, (("channel", "fcm"), ("le", "0.025")))] == 1
    assert samples[(bucket, (("channel", "fcm"), ("le", "0.1")))] == 1
    assert samples[(bucket, (("channel", "fcm"), ("le", "0.25")))] == 2
    assert samples[(bucket, (("channel", "line"), ("le", "30.0")))] == 0
    assert samples[(bucket, (("channel", "line"), ("le", "+Inf")))] == 1
    assert samples[("hub_send_latency_seconds_count", (("channel", "fcm"),))] == 2
    assert samples[("hub_send_latency_seconds_sum", (("channel", "fcm"),))] == pytest.approx(0.22)
    assert samples[("hub_queue_depth", (("state", "ready"),))] == 2
    assert samples[("hub_queue_depth", (("state", "deferred"),))] == 1
    recent_rows = {k: v for k, v in samples.items() if k[0] == "hub_recent_deliveries"}
    assert recent_rows == {
        ("hub_recent_deliveries", (("channel", "fcm"), ("status", "failed"))): 2,
        ("hub_recent_deliveries", (("channel", "line"), ("status", "sent"))): 3,
    }


async def test_metrics_report_the_current_mode(settings: Settings) -> None:
    async def disaster(app: Any) -> int:
        return 1

    app = create_app(settings)
    app[MODE_READER] = disaster
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()
    try:
        samples = _samples(await (await client.get("/metrics")).text())
    finally:
        await client.close()
    assert samples[("hub_mode", ())] == 1


async def test_metrics_read_the_mode_areas_state(client: TestClient[Any, Any]) -> None:
    pytest.importorskip("notify.mode.state")
    samples = _samples(await (await client.get("/metrics")).text())
    assert samples[("hub_mode", ())] == 0  # no switch yet: normal
