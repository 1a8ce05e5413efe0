"""Operations metrics for Prometheus: `GET /metrics`.

Workers run on several machines, so prometheus-client's in-process registry (or its
multiprocess directory) cannot see their sends. Instead, workers call `record_send(...)`,
which adds to a few Redis hashes in one pipeline; the scrape reads those hashes, the arq
queue and the current mode, and renders them with prometheus-client.

    from notify.stats.metrics import record_send
    started = time.perf_counter()
    results = await channel.send_batch(recipients, message, context)
    await record_send(ctx["redis"], "line", results, time.perf_counter() - started)
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from arq.constants import default_queue_name
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from channels.base import DeliveryResult
from notify.db import Database, utcnow
from notify.models import Broadcast
from notify.queue_redis import redis_text
from notify.stats.queries import deliveries
from notify.web.keys import DB, REDIS

log = logging.getLogger(__name__)

MESSAGES_KEY = "hub:metrics:messages"
ERRORS_KEY = "hub:metrics:provider_errors"
LATENCY_KEY = "hub:metrics:latency:{channel}"
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
RECENT_WINDOW = dt.timedelta(hours=24)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# How to read the current mode (0 normal, 1 disaster); an app may set its own.
ModeReader = Callable[[web.Application], Awaitable[int | None]]
MODE_READER: web.AppKey[ModeReader] = web.AppKey("stats_mode_reader")


async def mode_from_database(app: web.Application) -> int | None:
    """The mode area's `mode_state` row, read at scrape time (one primary-key lookup)."""
    try:
        from notify.mode.state import current_mode  # the mode area owns where it is kept
    except ImportError:
        return None
    try:
        return 1 if await current_mode(app[DB]) == "disaster" else 0
    except Exception as exc:  # a scrape must answer even when the database does not
        log.warning("metrics: mode unavailable: %s", exc)
        return None


async def record_send(
    redis: Any, channel: str, results: Sequence[DeliveryResult], latency_s: float | None
) -> None:
    """Count one provider call's results (by outcome and error code) and its latency."""
    pipe = redis.pipeline(transaction=False)
    # Counted by the outcome members themselves: `.value` is a Python-level property, and a
    # LINE batch has 500 results.
    outcomes = Counter(result.outcome for result in results)
    errors = Counter(result.error_code for result in results if result.error_code)
    for outcome, n in outcomes.items():
        pipe.hincrby(MESSAGES_KEY, f"{channel}|{outcome.value}", n)
    for code, n in errors.items():
        pipe.hincrby(ERRORS_KEY, f"{channel}|{code[:64]}", n)
    if latency_s is not None:
        key = LATENCY_KEY.format(channel=channel)
        bucket = next((b for b in LATENCY_BUCKETS if latency_s <= b), None)
        pipe.hincrby(key, "+Inf" if bucket is None else repr(bucket), 1)
        pipe.hincrbyfloat(key, "sum", latency_s)
    await pipe.execute()


async def record_provider_error(redis: Any, channel: str, code: str) -> None:
    """A whole call failed (e.g. a 5xx before any per-recipient result)."""
    await redis.hincrby(ERRORS_KEY, f"{channel}|{code[:64]}", 1)


@dataclass(slots=True)
class Snapshot:
    messages: dict[tuple[str, str], int] = field(default_factory=dict)
    errors: dict[tuple[str, str], int] = field(default_factory=dict)
    latency: dict[str, dict[str, float]] = field(default_factory=dict)
    queue_total: int = 0
    queue_ready: int = 0
    mode: int | None = None
    recent_deliveries: dict[tuple[str, str], int] = field(default_factory=dict)


async def read_snapshot(redis: Any, channels: Iterable[str] = ("line", "fcm", "email")) -> Snapshot:
    snap = Snapshot()
    for raw, n in (await redis.hgetall(MESSAGES_KEY)).items():
        channel, _, outcome = redis_text(raw).partition("|")
        snap.messages[(channel, outcome)] = int(n)
    for raw, n in (await redis.hgetall(ERRORS_KEY)).items():
        channel, _, code = redis_text(raw).partition("|")
        snap.errors[(channel, code)] = int(n)
    for channel in channels:
        found = await redis.hgetall(LATENCY_KEY.format(channel=channel))
        if found:
            snap.latency[channel] = {redis_text(k): float(v) for k, v in found.items()}
    snap.queue_total = int(await redis.zcard(default_queue_name))
    snap.queue_ready = int(await redis.zcount(default_queue_name, "-inf", time.time() * 1000))
    return snap


class SnapshotCollector(Collector):
    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap

    def collect(self) -> Iterable[Any]:
        snap = self.snap
        messages = CounterMetricFamily(
            "hub_messages",
            "Messages handed to providers, by channel and outcome",
            labels=["channel", "outcome"],
        )
        for (channel, outcome), n in sorted(snap.messages.items()):
            messages.add_metric([channel, outcome], n)
        yield messages
        errors = CounterMetricFamily(
            "hub_provider_errors",
            "Provider errors by channel and error code",
            labels=["channel", "code"],
        )
        for (channel, code), n in sorted(snap.errors.items()):
            errors.add_metric([channel, code], n)
        yield errors
        latency = HistogramMetricFamily(
            "hub_send_latency_seconds", "Time of one provider call (a batch)", labels=["channel"]
        )
        for channel, found in sorted(snap.latency.items()):
            cumulative, buckets = 0.0, []
            for bound in LATENCY_BUCKETS:
                cumulative += found.get(repr(bound), 0.0)
                buckets.append((repr(bound), cumulative))
            cumulative += found.get("+Inf", 0.0)
            buckets.append(("+Inf", cumulative))
            latency.add_metric([channel], buckets, found.get("sum", 0.0))
        yield latency
        queue = GaugeMetricFamily("hub_queue_depth", "Jobs in the arq queue", labels=["state"])
        queue.add_metric(["ready"], snap.queue_ready)
        queue.add_metric(["deferred"], snap.queue_total - snap.queue_ready)
        yield queue
        recent = GaugeMetricFamily(
            "hub_recent_deliveries",
            "Recipients of broadcasts started in the last 24 hours, by channel and status",
            labels=["channel", "status"],
        )
        for (channel, status), n in sorted(snap.recent_deliveries.items()):
            recent.add_metric([channel, status], n)
        yield recent
        if snap.mode is not None:
            yield GaugeMetricFamily("hub_mode", "Current mode: 0 normal, 1 disaster", snap.mode)


def render(snap: Snapshot) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(snap))
    return generate_latest(registry)


async def recent_deliveries(db: Database) -> dict[tuple[str, str], int]:
    """Delivery rows of recent broadcasts by channel and status (the engine's own record;
    an index range per broadcast, not a scan of all history)."""
    d = deliveries.c
    since = utcnow() - RECENT_WINDOW
    query = (
        select(d.channel, d.status, func.count())
        .join(Broadcast, Broadcast.id == d.broadcast_id)
        .where(Broadcast.started_at >= since)
        .group_by(d.channel, d.status)
    )
    try:
        async with db.sessionmaker() as session:
            return {(ch, st): int(n) for ch, st, n in await session.execute(query)}
    except Exception as exc:  # a scrape must answer even when the database does not
        log.warning("metrics: deliveries unavailable: %s", exc)
        return {}


async def metrics_response(request: web.Request) -> web.Response:
    snap = await read_snapshot(request.app[REDIS])
    snap.recent_deliveries = await recent_deliveries(request.app[DB])
    reader = request.app.get(MODE_READER, mode_from_database)
    snap.mode = await reader(request.app)
    return web.Response(body=render(snap), headers={"Content-Type": CONTENT_TYPE})
