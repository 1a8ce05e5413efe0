"""The shared Redis rate limiter, alone and in front of a sandbox that enforces LINE's limit."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator

import pytest
from arq import Retry
from arq.connections import ArqRedis
from redis.asyncio import Redis
from sqlalchemy import select

from notify.db import Database
from notify.delivery import lanes
from notify.delivery.engine import begin_delivery
from notify.delivery.ratelimit import (
    KEY_PREFIX,
    SAFETY,
    Bucket,
    RateLimiter,
    TooLong,
    buckets_for,
)
from notify.delivery.runtime import runtime
from notify.delivery.sender import send_batch
from notify.delivery.tables import DeliveryBatch
from notify.settings import Settings
from sandbox.runner import SandboxHandles
from tests.delivery.city import (
    Person,
    broadcast_status,
    first_batch,
    make_broadcast,
    seed,
    times_delivered,
)
from tests.delivery.conftest import WorkerContext, run_worker

MULTICAST = "/v2/bot/message/multicast"


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def test_reservations_are_spaced_at_the_rate(redis: Redis) -> None:
    bucket = Bucket("test:spacing", per_s=100.0)
    limiter = RateLimiter(redis)
    waits = [await limiter.reserve(bucket, 1) for _ in range(20)]
    interval = 1 / (100.0 * SAFETY)
    assert waits[0] == 0.0
    # Every reservation waits one interval longer than the one before (less elapsed time).
    assert waits[-1] == pytest.approx(19 * interval, abs=0.05)
    assert all(b >= a - 0.002 for a, b in itertools.pairwise(waits))


async def test_two_workers_share_one_bucket(redis: Redis, redis_url: str) -> None:
    other = Redis.from_url(redis_url)
    try:
        bucket = Bucket("test:shared", per_s=50.0)
        a, b = RateLimiter(redis), RateLimiter(other)
        start = time.monotonic()
        await asyncio.gather(*(lim.acquire(bucket, 1) for lim in [a, b] * 10))
        elapsed = time.monotonic() - start
    finally:
        await other.aclose()
    assert elapsed >= 19 / (50.0 * SAFETY) - 0.05  # 20 units at 50/s, whoever asks


async def test_a_long_wait_is_refused_not_reserved(redis: Redis) -> None:
    bucket = Bucket("test:long", per_s=10.0)
    limiter = RateLimiter(redis)
    await limiter.reserve(bucket, 50, max_wait_s=100)  # five seconds' worth
    with pytest.raises(TooLong) as refused:
        await limiter.reserve(bucket, 10, max_wait_s=1.0)
    assert refused.value.wait_s > 1.0
    assert 4.0 < await limiter.reserve(bucket, 1, max_wait_s=100) < 6.5  # nothing was taken


async def test_a_429_holds_everyone_back(redis: Redis) -> None:
    bucket = Bucket("test:penalty", per_s=1000.0)
    limiter = RateLimiter(redis)
    await limiter.penalize(bucket, 2.0)
    assert 1.8 < await limiter.reserve(bucket, 1) <= 2.0


async def test_disabled_limiter_never_waits(redis: Redis) -> None:
    limiter = RateLimiter(redis, enabled=False)
    bucket = Bucket("test:off", per_s=1.0)
    assert [await limiter.reserve(bucket, 100) for _ in range(3)] == [0.0, 0.0, 0.0]


def test_default_buckets_are_the_providers_limits() -> None:
    buckets = buckets_for(Settings())
    assert buckets["line"].per_s == 200.0  # multicast: 200 requests/s
    assert buckets["fcm"].per_s == 10_000.0  # 600,000 messages/min
    assert buckets["email"].per_s == Settings().smtp_per_s


async def send_sixty_in_batches_of_five(
    settings: Settings, db: Database, queue: ArqRedis, sandboxes: SandboxHandles
) -> tuple[float, list[int]]:
    town = await seed(db, [Person(line=True, ward="141313") for _ in range(60)])
    broadcast_id = await make_broadcast(db, ["line"])
    await queue.enqueue_job("delivery.begin", broadcast_id)
    started = time.monotonic()
    await run_worker(settings.model_copy(update={"chunk_size_line": 5}))
    elapsed = time.monotonic() - started
    assert times_delivered(sandboxes, town, "line") == {1}
    assert await broadcast_status(db, broadcast_id) == "completed"
    return elapsed, [r["status"] for r in sandboxes.line.base.log.entries(path=MULTICAST)]


async def test_sends_stay_under_the_providers_limit(
    hub_settings: Settings, db: Database, queue: ArqRedis, sandboxes: SandboxHandles
) -> None:
    # The provider allows 8 a second; the hub is set to 5 (headroom for arrival jitter on a
    # busy test machine: the provider counts arrivals, the hub can only space departures,
    # and a stalled event loop lets several spaced departures leave together).
    sandboxes.line.base.update_limits({"enabled": True, "multicast": [8, 1.0]})
    settings = hub_settings.model_copy(
        update={"rate_limits_enabled": True, "line_multicast_per_s": 5.0}
    )
    elapsed, statuses = await send_sixty_in_batches_of_five(settings, db, queue, sandboxes)
    assert statuses == [200] * 12  # twelve multicasts, not one refused
    assert elapsed >= 11 / 5 * SAFETY - 0.1  # and not faster than the setting allows


async def test_a_429_slows_every_sender_down_and_is_retried(
    hub_settings: Settings, db: Database, queue: ArqRedis, sandboxes: SandboxHandles
) -> None:
    # The hub believes in 50/s; the provider allows 4/s and answers 429 (no Retry-After).
    sandboxes.line.base.update_limits({"enabled": True, "multicast": [4, 1.0]})
    settings = hub_settings.model_copy(
        update={"rate_limits_enabled": True, "line_multicast_per_s": 50.0}
    )
    _, statuses = await send_sixty_in_batches_of_five(settings, db, queue, sandboxes)
    assert 429 in statuses
    assert statuses.count(200) == 12


async def test_a_pool_that_meets_a_long_wait_gives_its_batches_back_and_comes_back(
    hub_settings: Settings, db: Database, queue: ArqRedis, sandboxes: SandboxHandles
) -> None:
    # A 429 told everyone to hold back longer than a send may wait: the LINE pool sends
    # nothing, leaves every batch claimable, and its job asks arq to come back then.
    settings = hub_settings.model_copy(update={"rate_limits_enabled": True, "chunk_size_line": 5})
    town = await seed(db, [Person(line=True, ward="141313") for _ in range(20)])
    broadcast_id = await make_broadcast(db, ["line"])
    async with WorkerContext(settings, queue) as ctx:
        await begin_delivery(ctx, broadcast_id)
        rt = runtime(ctx)
        await rt.limiter.penalize(rt.buckets["line"], 12.0)
        first = await first_batch(db)
        with pytest.raises(Retry) as retry:
            await send_batch(rt, first, "line")
        assert 10_000 < (retry.value.defer_score or 0) <= 12_000
        assert rt.pools == set() and not await lanes.busy_lanes(rt)
    assert sandboxes.line.base.log.entries(path=MULTICAST) == []
    async with db.transaction() as session:
        states = set((await session.execute(select(DeliveryBatch.status))).scalars())
    assert states == {"queued"}  # claimable at once, not leased by a pool that stopped

    await queue.delete(KEY_PREFIX + buckets_for(settings)["line"].name)  # the hold is over
    await run_worker(settings)
    assert times_delivered(sandboxes, town, "line") == {1}
    assert await broadcast_status(db, broadcast_id) == "completed"
