"""The delivery engine's entry points: start a broadcast, plan, release held rows, finish.

    begin_delivery(ctx, broadcast_id)   # from the broadcasts area's start job
      └ snapshot (an INSERT … SELECT per part of the residents, each part exactly once and
        queued as it commits: `delivery_runs` holds the progress)
      └ plan (stream pending rows → batches, enqueue `delivery.send_batch` jobs)
    send_batch (notify.delivery.sender)  # many workers, one batch each
    reconcile (cron)                     # re-plans, re-enqueues, releases held rows, finishes

Every step reads its state from the database and may run again after a crash.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import BigInteger, BindParameter, bindparam, exists, func, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from notify import audit
from notify.db import utcnow
from notify.delivery.planner import Planner, new_planner, pending_rows_query, plan_pending
from notify.delivery.queue import enqueue_batches
from notify.delivery.runtime import DeliveryRuntime, runtime
from notify.delivery.snapshot import Part, Snapshot, part_end, snapshot_and_plan
from notify.delivery.sql import execute_core
from notify.delivery.tables import (
    ACTIVE_BATCH_STATUSES,
    BatchStatus,
    Delivery,
    DeliveryBatch,
    DeliveryRun,
    DeliveryStatus,
    unbatched,
)
from notify.models import Broadcast
from notify.stats.insight import unit_mode_for

log = logging.getLogger(__name__)

SENDING = "sending"
PAUSED = "paused"
CANCELLED = "cancelled"
COMPLETED = "completed"
FAILED = "failed"
PLAN_LOCK_MS = 30_000  # renewed after every page; a dead planner's lock ends soon
ALL_FAILED = "全件の配信に失敗しました / every delivery failed"
# Batch sequence numbers of snapshot part k start at k × this (a part's batches of one
# channel, language and ward number from there).
SEQ_STRIDE = 1_000_000


async def begin_delivery(ctx: Mapping[str, Any], broadcast_id: int) -> None:
    """Snapshot the recipients of a 'sending' broadcast and queue its batches (idempotent).
    Each part of the snapshot is queued as soon as it is written, so the first residents
    are being sent to while the rest are still being counted in."""
    rt = runtime(ctx)
    async with rt.db.transaction() as session:
        broadcast = await session.get(Broadcast, broadcast_id)
        if broadcast is None or broadcast.status not in (SENDING, PAUSED):
            return
    snapshot = await take_snapshot(rt, broadcast)
    if snapshot is None:  # a re-run: the snapshot exists; make sure its batches are queued
        async with rt.db.transaction() as session:
            batches = await session.execute(
                select(DeliveryBatch.id, DeliveryBatch.channel).where(
                    DeliveryBatch.broadcast_id == broadcast_id,
                    DeliveryBatch.status == BatchStatus.QUEUED,
                )
            )
            pairs = [(batch_id, channel) for batch_id, channel in batches]
    else:
        pairs = snapshot.batches
    await enqueue_batches(rt.redis, pairs)
    await continue_snapshot(rt, broadcast_id)
    await plan_broadcast(rt, broadcast_id)  # rows the snapshot could not place, if any
    await maybe_finish(rt, broadcast_id)


async def take_snapshot(rt: DeliveryRuntime, broadcast: Broadcast) -> Snapshot | None:
    """Start the snapshot, once: the run and its first part in one transaction; None when
    an earlier run already started it (`continue_snapshot` takes the other parts)."""
    now = utcnow()
    unit_mode = await _unit_mode(rt, broadcast.id)  # may ask LINE: outside the transaction
    try:
        async with rt.db.transaction() as session:
            if await session.get(DeliveryRun, broadcast.id) is not None:
                return None
            run = DeliveryRun(
                broadcast_id=broadcast.id,
                unit_mode=unit_mode,
                snapshot_at=now,
                recipients=0,
                snapshot_parts=0,
                snapshot_done=False,
            )
            session.add(run)
            await session.flush()  # claims the broadcast: a racing run fails here
            snapshot = await _snapshot_part(rt, session, broadcast, run, now)
    except IntegrityError:
        return None
    await _fresh_statistics(rt)
    return snapshot


async def continue_snapshot(rt: DeliveryRuntime, broadcast_id: int) -> int:
    """Take the snapshot's remaining parts, queueing each one's batches as it commits;
    returns how many were taken. Stops when every resident is covered, when the broadcast
    is not sending (resume comes back here), or when another run is writing a part (it
    goes on from there)."""
    taken = 0
    while True:
        now = utcnow()
        try:
            async with rt.db.transaction() as session:
                run = await session.scalar(
                    select(DeliveryRun)
                    .where(DeliveryRun.broadcast_id == broadcast_id)
                    .with_for_update(skip_locked=True)
                )
                if run is None or run.snapshot_done:
                    break
                broadcast = await session.get(Broadcast, broadcast_id)
                if broadcast is None or broadcast.status != SENDING:
                    break
                snapshot = await _snapshot_part(rt, session, broadcast, run, now)
        except IntegrityError:  # SQLite has no SKIP LOCKED: another run wrote this part
            break
        await enqueue_batches(rt.redis, snapshot.batches)
        taken += 1
    if taken:
        await _fresh_statistics(rt)
    return taken


async def _snapshot_part(
    rt: DeliveryRuntime,
    session: AsyncSession,
    broadcast: Broadcast,
    run: DeliveryRun,
    now: dt.datetime,
) -> Snapshot:
    """The next part: the next `snapshot_first_part × 4^k` residents of the segment (k:
    parts taken), or all the rest. Inside the caller's transaction, with the run row."""
    size = rt.settings.snapshot_first_part * 4**run.snapshot_parts
    through = await part_end(
        session, broadcast, rt.city, run.snapshot_at, after=run.snapshot_cursor, size=size
    )
    part = Part(
        send_date=run.snapshot_at,
        after=run.snapshot_cursor,
        through=through,
        seq_base=run.snapshot_parts * SEQ_STRIDE,
    )
    snapshot = await snapshot_and_plan(
        session, broadcast, rt.city, now, rt.sizes(), run.unit_mode, part
    )
    run.recipients += snapshot.recipients
    run.snapshot_parts += 1
    run.snapshot_cursor = through
    run.snapshot_done = through is None
    audit.record(
        session,
        audit.SYSTEM,
        "delivery.snapshot",
        target_type="broadcast",
        target_id=broadcast.id,
        part=run.snapshot_parts,
        complete=run.snapshot_done,
        recipients=snapshot.recipients,
        held=snapshot.held,
        batches=len(snapshot.batches),
    )
    log.info(
        "broadcast %s: snapshot part %s%s: %s recipients in %s batches, %s held",
        broadcast.id,
        run.snapshot_parts,
        " (last)" if run.snapshot_done else "",
        snapshot.recipients,
        len(snapshot.batches),
        snapshot.held,
    )
    return snapshot


async def _fresh_statistics(rt: DeliveryRuntime) -> None:
    if not rt.db.is_sqlite:
        # Fresh statistics for the per-batch statements that follow (the table's last ones
        # are often "empty", and PostgreSQL then plans scans instead of index lookups).
        async with rt.db.engine.connect() as conn:
            await conn.execute(text("ANALYZE deliveries"))
            await conn.commit()


async def _unit_mode(rt: DeliveryRuntime, broadcast_id: int) -> str:
    """One LINE aggregation unit per ward while the month's cap allows, else one per
    broadcast, else none (the statistics side owns the count of names used)."""
    ctx = {"settings": rt.settings, "db": rt.db, "redis": rt.redis}
    return await unit_mode_for(ctx, broadcast_id)


@asynccontextmanager
async def plan_lock(rt: DeliveryRuntime, broadcast_id: int) -> AsyncIterator[bool]:
    """One planner per broadcast at a time (a Redis lock; losing it is safe, only slower:
    batches claim rows with `status = 'pending'`)."""
    key = f"delivery:plan-lock:{broadcast_id}"
    token = secrets.token_hex(8)
    got = bool(await rt.redis.set(key, token, nx=True, px=PLAN_LOCK_MS))
    try:
        yield got
    finally:
        if got and await rt.redis.get(key) == token.encode():
            await rt.redis.delete(key)


async def planner_for(rt: DeliveryRuntime, broadcast_id: int, now: dt.datetime) -> Planner:
    async with rt.db.transaction() as session:
        broadcast = await session.get(Broadcast, broadcast_id)
        run = await session.get(DeliveryRun, broadcast_id)
    assert broadcast is not None
    return new_planner(
        broadcast_id,
        rt.sizes(),
        unit_mode=run.unit_mode if run else "broadcast",
        emergency=broadcast.priority == "emergency",
        tz=rt.city.tz,
        now=now,
    )


async def plan_broadcast(
    rt: DeliveryRuntime, broadcast_id: int, now: dt.datetime | None = None
) -> int:
    """Plan every pending row of the broadcast; returns how many batches were made.
    `now` decides quiet hours (default: the current time)."""
    async with plan_lock(rt, broadcast_id) as got:
        if not got:
            return 0
        planner = await planner_for(rt, broadcast_id, now or utcnow())
        key = f"delivery:plan-lock:{broadcast_id}"

        async def enqueue(batches: list[tuple[int, str]]) -> None:
            await enqueue_batches(rt.redis, batches)
            await rt.redis.pexpire(key, PLAN_LOCK_MS)

        stats = await plan_pending(rt.db, planner, enqueue)
    if stats.batches or stats.held:
        log.info(
            "broadcast %s: planned %s rows into %s batches, %s held",
            broadcast_id,
            stats.planned,
            len(stats.batches),
            stats.held,
        )
    return len(stats.batches)


async def plan_rows(
    rt: DeliveryRuntime, session: AsyncSession, broadcast_id: int, ids: list[int]
) -> list[tuple[int, str]]:
    """Plan a few known pending rows (fallbacks) inside the caller's transaction."""
    planner = await planner_for(rt, broadcast_id, utcnow())
    for row in await session.execute(pending_rows_query(broadcast_id).where(Delivery.id.in_(ids))):
        planner.add(*row)
    planner.close_partial_groups()
    return await planner.write(session)


async def release_held(rt: DeliveryRuntime, broadcast_id: int, now: dt.datetime) -> int:
    """Held rows whose quiet hours are over go back to 'pending' and are planned."""
    async with rt.db.transaction() as session:
        released = (
            await session.execute(
                update(Delivery)
                .where(
                    Delivery.broadcast_id == broadcast_id,
                    unbatched(DeliveryStatus.HELD),
                    # None: quiet hours changed during the snapshot; nothing to wait for.
                    or_(Delivery.not_before <= now, Delivery.not_before.is_(None)),
                )
                .values(status=DeliveryStatus.PENDING, updated_at=now)
            )
        ).rowcount  # type: ignore[attr-defined]
    if released:
        await plan_broadcast(rt, broadcast_id, now)
    return int(released)


_BROADCAST: BindParameter[int] = bindparam("b_broadcast", type_=BigInteger)
# Built once: every batch's record asks (see notify.delivery.sql.execute_core).
_ACTIVE_BATCH = select(
    exists().where(
        DeliveryBatch.broadcast_id == _BROADCAST,
        DeliveryBatch.status.in_(ACTIVE_BATCH_STATUSES),
    )
)
_SNAPSHOT_UNFINISHED = select(
    exists().where(
        DeliveryRun.broadcast_id == _BROADCAST,
        DeliveryRun.snapshot_done.is_(False),
    )
)
_WAITING_ROW = select(
    exists().where(
        Delivery.broadcast_id == _BROADCAST,
        unbatched(DeliveryStatus.PENDING, DeliveryStatus.HELD),
    )
)


async def is_busy(session: AsyncSession, broadcast_id: int) -> bool:
    """True while a batch of the broadcast is active, a row waits to be planned / held, or
    its snapshot has parts still to take."""
    params = {"b_broadcast": broadcast_id}
    if (await execute_core(session, _ACTIVE_BATCH, params)).scalar_one():
        return True
    if (await execute_core(session, _SNAPSHOT_UNFINISHED, params)).scalar_one():
        return True
    return bool((await execute_core(session, _WAITING_ROW, params)).scalar_one())


async def maybe_finish(rt: DeliveryRuntime, broadcast_id: int) -> str | None:
    """Mark the broadcast completed (or failed: nothing sent, something failed) once no
    batch is active and no row waits; returns the new status or None."""
    async with rt.db.autocommit() as conn:
        # Most calls find another batch active: one read answers them, without a transaction
        # (the same read, in READ COMMITTED, as the first one of `is_busy` below).
        params = {"b_broadcast": broadcast_id}
        if (await conn.execute(_ACTIVE_BATCH, params)).scalar_one():
            return None
    async with rt.db.transaction() as session:
        if await is_busy(session, broadcast_id):
            return None
        counts = dict(
            (
                await session.execute(
                    select(Delivery.status, func.count())
                    .where(
                        Delivery.broadcast_id == broadcast_id,
                        Delivery.status.in_((DeliveryStatus.SENT, DeliveryStatus.FAILED)),
                    )
                    .group_by(Delivery.status)
                )
            ).all()
        )
        sent, failed = counts.get(DeliveryStatus.SENT, 0), counts.get(DeliveryStatus.FAILED, 0)
        status = FAILED if failed and not sent else COMPLETED
        now = utcnow()
        changed = (
            await session.execute(
                update(Broadcast)
                .where(Broadcast.id == broadcast_id, Broadcast.status == SENDING)
                .values(
                    status=status,
                    finished_at=now,
                    error="全件の配信に失敗しました / every delivery failed"
                    if status == FAILED
                    else None,
                )
            )
        ).rowcount  # type: ignore[attr-defined]
        if not changed:
            return None
        await session.execute(
            update(DeliveryRun)
            .where(DeliveryRun.broadcast_id == broadcast_id)
            .values(finished_at=now)
        )
        audit.record(
            session,
            audit.SYSTEM,
            f"broadcast.{status}",
            target_type="broadcast",
            target_id=broadcast_id,
            sent=sent,
            failed=failed,
        )
    log.info("broadcast %s %s: %s sent, %s failed", broadcast_id, status, sent, failed)
    return status
