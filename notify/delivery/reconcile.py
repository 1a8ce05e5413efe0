"""The reconciler: the database says what is left to do; make the queue agree.

Runs from cron every few seconds (and per broadcast as the `delivery.plan` job, e.g. on
resume). It is what makes a Redis wipe harmless: every unfinished batch whose job is gone is
queued again, pending rows are planned, held rows whose quiet hours ended are released, a
batch whose worker died (lease run out) gets a rescue job, a broadcast whose start job was
lost is started, an unfinished snapshot is taken on, and finished broadcasts are closed.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import exists, select, update

from notify.db import utcnow
from notify.delivery.engine import (
    CANCELLED,
    PAUSED,
    SENDING,
    continue_snapshot,
    maybe_finish,
    plan_broadcast,
    release_held,
    take_snapshot,
)
from notify.delivery.lanes import busy_lanes
from notify.delivery.queue import (
    SEND_BATCH,
    batch_job_id,
    enqueue_batches,
    job_states,
    rescue_job_id,
)
from notify.delivery.runtime import DeliveryRuntime
from notify.delivery.tables import (
    ACTIVE_BATCH_STATUSES,
    OPEN_STATUSES,
    BatchStatus,
    Delivery,
    DeliveryBatch,
    DeliveryRun,
    DeliveryStatus,
    unbatched,
)
from notify.models import Broadcast

log = logging.getLogger(__name__)

# A 'sending' broadcast without a snapshot this long after it started lost its start job.
START_GRACE = dt.timedelta(seconds=60)
# A live send job claims its due batch (or leaves) within seconds; one "in progress" this
# long without a claim belongs to a dead worker.
STALLED_AFTER = dt.timedelta(seconds=60)


async def reconcile(rt: DeliveryRuntime) -> int:
    """One pass over every unfinished broadcast; returns how many jobs were (re)queued."""
    async with rt.db.transaction() as session:
        unfinished = select(DeliveryRun.broadcast_id).where(DeliveryRun.finished_at.is_(None))
        rows = (
            await session.execute(
                select(Broadcast.id, Broadcast.status, Broadcast.started_at, Broadcast.updated_at)
                .where(
                    Broadcast.status.in_((SENDING, PAUSED, CANCELLED)),
                    (Broadcast.id.in_(unfinished)) | (Broadcast.status == SENDING),
                )
                .order_by(Broadcast.id)
            )
        ).all()
        candidates = [row[0] for row in rows]
        started = set(
            (
                await session.execute(
                    select(DeliveryRun.broadcast_id).where(DeliveryRun.broadcast_id.in_(candidates))
                )
            ).scalars()
            if candidates
            else []
        )
    queued = 0
    now = utcnow()
    for broadcast_id, status, started_at, updated_at in rows:
        if broadcast_id not in started:
            if status != SENDING or (started_at or updated_at) > now - START_GRACE:
                continue
            await _start_lost_broadcast(rt, broadcast_id)
        queued += await reconcile_broadcast(rt, broadcast_id)
    return queued


async def _start_lost_broadcast(rt: DeliveryRuntime, broadcast_id: int) -> None:
    async with rt.db.transaction() as session:
        broadcast = await session.get(Broadcast, broadcast_id)
    if broadcast is not None and (snapshot := await take_snapshot(rt, broadcast)) is not None:
        await enqueue_batches(rt.redis, snapshot.batches)
        log.warning("broadcast %s: start job lost; the reconciler took the snapshot", broadcast_id)


async def reconcile_broadcast(rt: DeliveryRuntime, broadcast_id: int) -> int:
    now = utcnow()
    async with rt.db.transaction() as session:
        status = (
            await session.execute(select(Broadcast.status).where(Broadcast.id == broadcast_id))
        ).scalar_one_or_none()
    if status is None:
        return 0
    if status == CANCELLED:
        await cancel_remaining(rt, broadcast_id, now)
        return 0
    if status != SENDING:
        return 0
    # A snapshot left unfinished (its worker died between parts, or the broadcast was
    # paused meanwhile) goes on here; a part being written elsewhere is skipped.
    await continue_snapshot(rt, broadcast_id)
    await release_held(rt, broadcast_id, now)
    async with rt.db.transaction() as session:
        has_pending = (
            await session.execute(
                select(
                    exists().where(
                        Delivery.broadcast_id == broadcast_id,
                        unbatched(DeliveryStatus.PENDING),
                    )
                )
            )
        ).scalar_one()
    if has_pending:
        await plan_broadcast(rt, broadcast_id)
    queued = await requeue_batches(rt, broadcast_id, now)
    await maybe_finish(rt, broadcast_id)
    return queued


async def requeue_batches(rt: DeliveryRuntime, broadcast_id: int, now: dt.datetime) -> int:
    """Queue every active batch of the broadcast that nothing alive is working on.

    - its job is gone (a Redis wipe; a lane job that left the batch to a lane that died):
      queue it again, unless a lane of its channel is running (it takes the batch from the
      database; the registry is wiped with Redis and a dead lane stops renewing its entry);
    - 'sending' under a lease nobody renews (the worker died mid-send), or 'queued'/'retry'
      and due while its job has been "in progress" for longer than any live job takes to
      claim a batch (the worker died between picking the job and claiming the batch): arq
      would re-run that job only once its in-progress key expires (the longest job timeout
      + 10 s), so a rescue job takes over now; the batch's lease keeps the two apart.
    """
    async with rt.db.transaction() as session:
        batches = (
            await session.execute(
                select(
                    DeliveryBatch.id,
                    DeliveryBatch.channel,
                    DeliveryBatch.status,
                    DeliveryBatch.attempts,
                    DeliveryBatch.next_attempt_at,
                    DeliveryBatch.lease_until,
                    DeliveryBatch.updated_at,
                ).where(
                    DeliveryBatch.broadcast_id == broadcast_id,
                    DeliveryBatch.status.in_(ACTIVE_BATCH_STATUSES),
                )
            )
        ).all()
    states = await job_states(rt.redis, [batch_job_id(b.id) for b in batches])
    laned = await busy_lanes(rt) if batches else set()
    queued = 0
    for batch, (held, running) in zip(batches, states, strict=True):
        sending = batch.status == BatchStatus.SENDING
        if sending and batch.lease_until is not None and batch.lease_until > now:
            continue  # a live worker holds it
        due = batch.next_attempt_at is None or batch.next_attempt_at <= now
        stalled = running and due and batch.updated_at < now - STALLED_AFTER
        if not held and not sending and batch.channel in laned:
            continue  # a running lane of its channel takes it (its job left it to the lane)
        if not held:
            job_id = batch_job_id(batch.id)
        elif sending or stalled:
            bucket = int(now.timestamp() // STALLED_AFTER.total_seconds())
            job_id = rescue_job_id(batch.id, batch.attempts, bucket)
        else:
            continue  # its job is waiting in the queue
        defer = batch.next_attempt_at if batch.status == BatchStatus.RETRY else None
        job = await rt.redis.enqueue_job(
            SEND_BATCH, batch.id, batch.channel, _job_id=job_id, _defer_until=defer
        )
        queued += job is not None
    if queued:
        log.info("broadcast %s: %s batch jobs re-queued", broadcast_id, queued)
    return queued


async def cancel_remaining(rt: DeliveryRuntime, broadcast_id: int, now: dt.datetime) -> None:
    """A cancelled broadcast: every row not yet sent (and not in flight) is cancelled."""
    async with rt.db.transaction() as session:
        idle = select(DeliveryBatch.id).where(
            DeliveryBatch.broadcast_id == broadcast_id,
            DeliveryBatch.status.in_((BatchStatus.QUEUED, BatchStatus.RETRY)),
        )
        await session.execute(
            update(Delivery)
            .where(
                Delivery.broadcast_id == broadcast_id,
                Delivery.status == DeliveryStatus.QUEUED,
                Delivery.batch_id.in_(idle),
            )
            .values(status=DeliveryStatus.CANCELLED, updated_at=now)
        )
        await session.execute(
            update(DeliveryBatch)
            .where(
                DeliveryBatch.broadcast_id == broadcast_id,
                DeliveryBatch.status.in_((BatchStatus.QUEUED, BatchStatus.RETRY)),
            )
            .values(status=BatchStatus.CANCELLED, updated_at=now)
        )
        await session.execute(
            update(Delivery)
            .where(
                Delivery.broadcast_id == broadcast_id,
                unbatched(DeliveryStatus.PENDING, DeliveryStatus.HELD),
            )
            .values(status=DeliveryStatus.CANCELLED, updated_at=now)
        )
        in_flight = (
            await session.execute(
                select(
                    exists().where(
                        Delivery.broadcast_id == broadcast_id,
                        Delivery.status.in_(OPEN_STATUSES),
                    )
                )
            )
        ).scalar_one()
        if not in_flight:
            await session.execute(
                update(DeliveryRun)
                .where(DeliveryRun.broadcast_id == broadcast_id, DeliveryRun.finished_at.is_(None))
                .values(finished_at=now)
            )
