"""Lanes: how FCM and email batches are sent, at most one batch of each in flight per process.

FCM and SMTP have no idempotency key, so a worker killed mid-batch repeats that batch;
sending one batch of a channel at a time per process bounds the repeat to one batch of each
channel per kill. A lane is
a send job that, after its own batch, keeps taking the channel's next due batch from the
database until none is left (or its time budget is spent, when it hands over to a fresh
job): back-to-back batches, and no job waiting in a worker slot.

A process runs one lane at a time, FCM *or* email: an SMTP message is a conversation of
round trips and crawls when its replies queue behind a hundred concurrent FCM requests in
the same event loop. The exception is a channel that finds no other process to run it for a
few tries (one worker, or every process busy): it runs beside the other lane
(`sender.BESIDE_AFTER_TRIES`), both slower, rather than one after the other.

Which lane a free process starts is balanced across processes through a small registry in
Redis (a sorted set per channel, member = worker, score = until when): a job for a channel
that already has a lane starts a lane for a channel that has work and none. A lane whose
channel runs dry moves on to a channel that still has due batches, so the send's last
channel is not left to one process; one of two lanes of a channel turns to a channel that
has none when that channel's job comes by (`should_turn`). Losing the registry (a Redis
wipe) only makes the balance worse for a while.

The same Redis holds which worker processes are up (`announce`, renewed while the process
runs): a job sent back "for another process" (`sender._pass_on`, `sender._meet_lane`) is only
worth sending back when there is another. With one worker (the demo, a small city) the job
goes ahead at once instead of bouncing off the queue for a few seconds first.

LINE's pools (`sender._pool`, several batches at once: LINE repeats nothing) use the same
registry, so the reconciler leaves their batches to them too; they take no part in the
FCM/email balance, but a pool in a process that runs the email lane keeps only a couple of
its loops going (`sender.POOL_LOOPS_BESIDE_EMAIL`), for the same reason as above.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Mapping

from sqlalchemy import exists, select

from notify.db import utcnow
from notify.delivery.runtime import DRAWN_CHANNELS, LANE_CHANNELS, DeliveryRuntime
from notify.delivery.tables import BatchStatus, DeliveryBatch
from notify.models import Broadcast
from notify.queue_redis import redis_text

log = logging.getLogger(__name__)

REGISTRY_TTL_S = 30.0
# How often a running lane renews its entry (once a batch is needlessly often, a Redis
# round trip each).
MARK_EVERY_S = 5.0
WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"


WORKERS_KEY = "delivery:workers"  # member = worker, score = until when it counts as up
ANNOUNCE_EVERY_S = 10.0


def _key(channel: str) -> str:
    return f"delivery:lanes:{channel}"


async def announce(rt: DeliveryRuntime) -> None:
    """This process is up (for `REGISTRY_TTL_S`); entries of processes gone are dropped."""
    now = time.time()
    async with rt.redis.pipeline(transaction=False) as pipe:
        pipe.zremrangebyscore(WORKERS_KEY, "-inf", now)
        pipe.zadd(WORKERS_KEY, {WORKER_ID: now + REGISTRY_TTL_S})
        await pipe.execute()


async def keep_announcing(rt: DeliveryRuntime) -> None:
    """Renew this process's entry until cancelled (at shutdown). A failed renewal only
    makes the process look gone to the others for a while."""
    while True:
        await asyncio.sleep(ANNOUNCE_EVERY_S)
        try:
            await announce(rt)
        except Exception:
            log.warning("could not renew this worker's entry in Redis", exc_info=True)


async def withdraw(rt: DeliveryRuntime) -> None:
    await rt.redis.zrem(WORKERS_KEY, WORKER_ID)


async def others_up(rt: DeliveryRuntime) -> bool:
    """Whether another worker process is up, by its entry (`announce`)."""
    up = await rt.redis.zrangebyscore(WORKERS_KEY, time.time(), "+inf")
    return any(redis_text(member) != WORKER_ID for member in up)


async def mark_lane(rt: DeliveryRuntime, channel: str) -> None:
    """This process runs (still) a lane of `channel`."""
    await rt.redis.zadd(_key(channel), {WORKER_ID: time.time() + REGISTRY_TTL_S})


async def unmark_lane(rt: DeliveryRuntime, channel: str) -> None:
    await rt.redis.zrem(_key(channel), WORKER_ID)


async def _lanes_running(
    rt: DeliveryRuntime, *, renewed_within_s: float | None = None
) -> dict[str, int]:
    """Lanes per channel whose entry has not run out (or was renewed that recently)."""
    since = time.time()
    if renewed_within_s is not None:
        since += REGISTRY_TTL_S - renewed_within_s
    async with rt.redis.pipeline(transaction=False) as pipe:
        for channel in DRAWN_CHANNELS:  # LINE's pools register too
            pipe.zcount(_key(channel), since, "+inf")
        counts = await pipe.execute()
    return dict(zip(DRAWN_CHANNELS, (int(c) for c in counts), strict=True))


async def busy_lane_counts(rt: DeliveryRuntime) -> dict[str, int]:
    """Lanes and pools per channel that renewed their entry lately (within two renewals):
    each takes its channel's queued batches from the database."""
    return await _lanes_running(rt, renewed_within_s=2 * MARK_EVERY_S)


async def busy_lanes(rt: DeliveryRuntime) -> set[str]:
    """Channels with a busy lane or pool: their batches need no job of their own."""
    return {channel for channel, n in (await busy_lane_counts(rt)).items() if n}


def should_turn(busy: Mapping[str, int], running: str, asked: str) -> bool:
    """Whether this process's lane of `running` should turn to `asked`, whose job met it
    (`busy`: `busy_lane_counts`): no lane sends `asked`, and another process runs a lane of
    `running`, which goes on. Two processes both start email lanes when a send begins before
    any FCM batch is planned; FCM then waited for email to run dry (a 1M send's first push
    went at 41 s)."""
    return not busy.get(asked) and busy.get(running, 0) >= 2


async def _has_due_work(rt: DeliveryRuntime, channel: str) -> bool:
    now = utcnow()
    query = select(
        exists().where(
            DeliveryBatch.channel == channel,
            DeliveryBatch.status.in_((BatchStatus.QUEUED, BatchStatus.RETRY)),
            (DeliveryBatch.next_attempt_at.is_(None)) | (DeliveryBatch.next_attempt_at <= now),
            DeliveryBatch.broadcast_id == Broadcast.id,
            Broadcast.status == "sending",
        )
    )
    async with rt.db.transaction() as session:
        return bool(await session.scalar(query))


async def other_lane_with_work(rt: DeliveryRuntime, finished: str) -> str | None:
    """The lane channel, other than `finished`, that has due batches (fewest lanes first)."""
    running = await _lanes_running(rt)
    for other in sorted(LANE_CHANNELS, key=lambda c: running.get(c, 0)):
        if other != finished and await _has_due_work(rt, other):
            return other
    return None


async def choose_lane(rt: DeliveryRuntime, asked: str) -> str:
    """The lane a free process should start when a job of channel `asked` arrives."""
    running = await _lanes_running(rt)
    if not running.get(asked):
        return asked
    for other in sorted(LANE_CHANNELS, key=lambda c: running.get(c, 0)):
        if other != asked and not running.get(other) and await _has_due_work(rt, other):
            return other
    return asked
