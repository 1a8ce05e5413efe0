"""Job names and ids of the delivery area, and the one place that enqueues them.

Job ids make enqueues idempotent: a batch has one job id (`delivery:batch:<id>`), so the
planner, a resume and the reconciler can all enqueue it and only one job exists. The
database lease on the batch (see `sender.claim_batch`) is what stops two runs from sending
the same batch; the job id only keeps the queue from filling with copies.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable

from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix, job_key_prefix

from notify.delivery.runtime import DRAWN_CHANNELS

BEGIN = "delivery.begin"
SEND_BATCH = "delivery.send_batch"
PLAN = "delivery.plan"
RECONCILE = "delivery.reconcile"
# Jobs per channel in one enqueue: enough to start a lane or pool in each of two processes.
LANE_STARTERS = 2


def batch_job_id(batch_id: int) -> str:
    return f"delivery:batch:{batch_id}"


def rescue_job_id(batch_id: int, attempts: int, bucket: int) -> str:
    """A second id for a batch whose worker died: arq would only re-run the original job
    after its in-progress key expires (the worker's longest job timeout + 10 s). `bucket`
    (a time slot) lets a rescue that died too be rescued in turn."""
    return f"delivery:batch:{batch_id}:rescue:{attempts}:{bucket}"


def begin_job_id(broadcast_id: int) -> str:
    return f"delivery:begin:{broadcast_id}"


def retry_job_id(batch_id: int, attempts: int) -> str:
    """The next try of a batch whose own job already ended (or is the lane handing it back)."""
    return f"delivery:batch:{batch_id}:try:{attempts + 1}"


def plan_job_id(broadcast_id: int) -> str:
    return f"delivery:plan:{broadcast_id}"


async def enqueue_batches(
    redis: ArqRedis,
    batches: Iterable[tuple[int, str]],
    *,
    defer_until: dt.datetime | None = None,
) -> int:
    """Enqueue send jobs for (batch id, channel)s; returns how many were new (the rest
    existed). The channel rides along so a busy worker can turn a job away before it
    touches the database.

    Every channel's batches are taken from the database by lanes (FCM, email) or pools
    (LINE) of the worker processes (`notify.delivery.lanes`, `sender`), so only the first
    `LANE_STARTERS` of each channel get a job: enough to start them. A job per batch cost
    more in arq's queue scans than the batch's own work (every poll walks the jobs other
    processes run, a few Redis round trips each), FCM and email jobs mostly bounced between
    processes, and LINE jobs waiting for a send slot held the workers' job slots. Should
    none run, the reconciler queues a job for each batch left (`requeue_batches`).
    """
    new = 0
    starters: Counter[str] = Counter()
    for batch_id, channel in batches:
        if channel in DRAWN_CHANNELS:
            starters[channel] += 1
            if starters[channel] > LANE_STARTERS:
                continue
        job = await redis.enqueue_job(
            SEND_BATCH,
            batch_id,
            channel,
            _job_id=batch_job_id(batch_id),
            _defer_until=defer_until,
        )
        new += job is not None
    return new


async def job_states(redis: ArqRedis, job_ids: list[str]) -> list[tuple[bool, bool]]:
    """For each job id: (Redis holds the job, a worker marked it in progress)."""
    if not job_ids:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.exists(job_key_prefix + job_id)
            pipe.exists(in_progress_key_prefix + job_id)
        found = await pipe.execute()
    return [(bool(found[i]), bool(found[i + 1])) for i in range(0, len(found), 2)]
