"""A batch's state in the database: claim with a lease, load, record, release.

The lease (`lease_token`, `lease_until`) is what makes "one run per batch" true without
trusting Redis: the running job renews it every few seconds; a killed worker's lease simply
runs out, and the next run (arq's own re-run, or the reconciler's rescue job) takes over.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Select,
    Table,
    Update,
    and_,
    bindparam,
    case,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from channels.base import ChannelName, DeliveryResult
from notify.db import UTCDateTime, utcnow
from notify.delivery.engine import CANCELLED, SENDING, maybe_finish, plan_rows
from notify.delivery.fallback import insert_fallbacks
from notify.delivery.queue import SEND_BATCH, enqueue_batches, retry_job_id
from notify.delivery.record import (
    BatchRow,
    all_sent,
    mark_skipped,
    record_all_sent,
    record_results,
)
from notify.delivery.retry import retry_delay
from notify.delivery.runtime import DeliveryRuntime
from notify.delivery.sql import execute_core, status_is
from notify.delivery.tables import BatchStatus, Delivery, DeliveryBatch, DeliveryStatus
from notify.models import Broadcast, Consent, Endpoint, EndpointStatus

log = logging.getLogger(__name__)

_batches = cast(Table, DeliveryBatch.__table__)
LEASE_S = 30.0
RENEW_EVERY_S = 8.0


def ready_to_claim(batch: DeliveryBatch, broadcast_status: str, now: dt.datetime) -> str | float:
    """'go', 'cancel', a reason to stop ('done', 'paused'), or seconds to wait first."""
    if batch.status in (BatchStatus.DONE, BatchStatus.CANCELLED):
        return "done"
    leased = batch.status == BatchStatus.SENDING and batch.lease_until and batch.lease_until > now
    if leased:
        return (batch.lease_until - now).total_seconds() + 0.5  # type: ignore[operator]
    if broadcast_status == CANCELLED:
        return "cancel"
    if broadcast_status != SENDING:
        return "paused"  # resume re-enqueues the batch
    if batch.status == BatchStatus.RETRY and batch.next_attempt_at:
        wait = (batch.next_attempt_at - now).total_seconds()
        if wait > 0.5:
            return wait
    return "go"


def _claimable(now: dt.datetime | BindParameter[dt.datetime]) -> ColumnElement[bool]:
    return and_(
        DeliveryBatch.status.in_((BatchStatus.QUEUED, BatchStatus.RETRY, BatchStatus.SENDING)),
        or_(DeliveryBatch.lease_until.is_(None), DeliveryBatch.lease_until <= now),
    )


@dataclass(slots=True)
class Attempt:
    """A claimed batch: detached copies of the batch and broadcast rows, the lease token and
    the rows still to send; `heartbeat` renews the lease from the claim until the attempt
    is recorded (`hold`)."""

    batch: DeliveryBatch
    broadcast: Broadcast
    token: str
    rows: list[BatchRow]
    heartbeat: asyncio.Task[None] | None = None

    def hold(self, rt: DeliveryRuntime) -> None:
        """Keep the lease until `let_go` (a batch claimed ahead of its send waits under it)."""
        if self.heartbeat is None:
            self.heartbeat = asyncio.create_task(keep_lease(rt, self.batch.id, self.token))

    def let_go(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat.cancel()
            self.heartbeat = None


def _due(now: dt.datetime | BindParameter[dt.datetime]) -> ColumnElement[bool]:
    """What a lane may take next: a batch waiting for its (next) try, or one left 'sending'
    whose lease ran out (its worker died; the job that would rescue it may meet this very
    lane and leave the batch to it)."""
    return or_(
        and_(
            DeliveryBatch.status.in_((BatchStatus.QUEUED, BatchStatus.RETRY)),
            or_(DeliveryBatch.next_attempt_at.is_(None), DeliveryBatch.next_attempt_at <= now),
            or_(DeliveryBatch.lease_until.is_(None), DeliveryBatch.lease_until <= now),
        ),
        and_(DeliveryBatch.status == BatchStatus.SENDING, DeliveryBatch.lease_until <= now),
    )


# The hot path's statements, built once (see notify.delivery.sql.execute_core).
_NOW = bindparam("b_now", type_=UTCDateTime)

# The oldest batch of a channel that may go now, emergencies first (a lane's next).
_NEXT_DUE = (
    select(DeliveryBatch.id)
    .join(Broadcast, Broadcast.id == DeliveryBatch.broadcast_id)
    .where(DeliveryBatch.channel == bindparam("b_channel"), _due(_NOW), Broadcast.status == SENDING)
    .order_by(case((Broadcast.priority == "emergency", 0), else_=1), DeliveryBatch.id)
    .limit(1)
    .with_for_update(skip_locked=True, of=DeliveryBatch)
)

# What a claim writes: the batch is sending under this run's lease, one more attempt.
_CLAIMED = {
    "status": BatchStatus.SENDING,
    "lease_token": bindparam("b_token"),
    "lease_until": bindparam("b_until"),
    "attempts": _batches.c.attempts + 1,
    "updated_at": _NOW,
}
_CLAIM = (
    _batches.update().where(_batches.c.id == bindparam("b_id"), _claimable(_NOW)).values(_CLAIMED)
)


# A lane's next batch found and claimed in one statement. Whatever `_NEXT_DUE` finds is
# ready to claim (due, lease run out, broadcast sending: `ready_to_claim` would say "go"),
# so the separate read, check and claim of `open_attempt` are not needed for it.
_CLAIM_NEXT_DUE = (
    _batches.update()
    .where(_batches.c.id == _NEXT_DUE.scalar_subquery(), _claimable(_NOW))
    .values(_CLAIMED)
    .returning(*_batches.c)
)


async def _claim_next_due(
    session: AsyncSession, channel: str, now: dt.datetime, token: str, lease_until: dt.datetime
) -> DeliveryBatch | None:
    """The channel's next due batch, claimed (None: none is due)."""
    params = {"b_channel": channel, "b_now": now, "b_token": token, "b_until": lease_until}
    row = (await execute_core(session, _CLAIM_NEXT_DUE, params)).first()
    return None if row is None else DeliveryBatch(**row._asdict())


async def open_attempt(
    rt: DeliveryRuntime, batch_id: int | None, *, channel: str | None = None
) -> Attempt | str | float:
    """One transaction: read the batch and its broadcast, decide, claim, load the rows; or,
    without `batch_id`, claim the next due batch of `channel` and read its broadcast.

    Returns the attempt, a reason to stop ('done', 'paused', 'cancelled', 'missing', 'none'),
    or the seconds to wait before trying again."""
    now = utcnow()
    token = secrets.token_hex(16)
    lease_until = now + dt.timedelta(seconds=LEASE_S)
    if batch_id is None:
        assert channel is not None
        return await _open_next_due(rt, channel, now, token, lease_until)
    async with rt.db.transaction() as session:
        claimed = await _claim_batch(session, batch_id, now, token, lease_until)
        if not isinstance(claimed, tuple):
            return claimed
        batch, broadcast = claimed
        rows, inactive = await _load_rows(session, batch.id)
        if inactive:
            await mark_skipped(session, inactive, now, "endpoint_inactive")
    return Attempt(batch, broadcast, token, rows)


async def _open_next_due(
    rt: DeliveryRuntime, channel: str, now: dt.datetime, token: str, lease_until: dt.datetime
) -> Attempt | str:
    """A lane's or pool's next batch, one statement at a time, each committing as it runs:
    the claim (one conditional UPDATE: the lease is what holds the batch from then on), its
    broadcast, its rows. A transaction around them would add a BEGIN and a COMMIT round trip
    to every batch, and a round trip to PostgreSQL (a write that wakes its backend, and one
    back) was the largest single cost of the worker's CPU on LINE's batches. A claim whose
    rows could not be loaded is handed back at once rather than left to its lease. The
    broadcast is read at its first claim in this process (`DeliveryRuntime.sending`)."""
    async with rt.db.autocommit_session() as session:
        batch = await _claim_next_due(session, channel, now, token, lease_until)
        if batch is None:
            return "none"
        try:
            broadcast = rt.sending.get(batch.broadcast_id)
            if broadcast is None:
                broadcast = await session.get(Broadcast, batch.broadcast_id)
                if broadcast is None:
                    return "missing"
                session.expunge_all()  # plain values from here on: nothing is flushed back
                rt.remember_sending(broadcast)
            rows, inactive = await _load_rows(session, batch.id)
            if inactive:
                await mark_skipped(session, inactive, now, "endpoint_inactive")
        except BaseException:
            await _unclaim_quietly(rt, batch.id, token)
            raise
    return Attempt(batch, broadcast, token, rows)


async def _unclaim_quietly(rt: DeliveryRuntime, batch_id: int, token: str) -> None:
    """Best effort: if the database is what failed, the lease runs out on its own."""
    try:
        await asyncio.shield(unclaim(rt, batch_id, token))
    except Exception:
        log.warning("batch %s: could not hand back its claim", batch_id, exc_info=True)


async def _claim_batch(
    session: AsyncSession, batch_id: int, now: dt.datetime, token: str, lease_until: dt.datetime
) -> tuple[DeliveryBatch, Broadcast] | str | float:
    """A job's own batch: read it and its broadcast, decide (`ready_to_claim`), claim."""
    batch = await session.get(DeliveryBatch, batch_id)
    if batch is None:
        return "missing"
    broadcast = await session.get(Broadcast, batch.broadcast_id)
    if broadcast is None:
        return "missing"
    session.expunge_all()  # plain values: the attempt counted below is never flushed back
    verdict = ready_to_claim(batch, broadcast.status, now)
    if verdict == "cancel":
        await _cancel(session, batch_id, now)
        return "cancelled"
    if verdict != "go":
        return verdict
    params = {"b_id": batch_id, "b_now": now, "b_token": token, "b_until": lease_until}
    if not (await execute_core(session, _CLAIM, params)).rowcount:
        return 1.0  # another run took it a moment ago
    batch.attempts += 1
    return batch, broadcast


async def keep_lease(rt: DeliveryRuntime, batch_id: int, token: str) -> None:
    """Renew the lease while the attempt runs (cancelled by the attempt when it ends)."""
    while True:
        await asyncio.sleep(RENEW_EVERY_S)
        now = utcnow()
        try:
            async with rt.db.transaction() as session:
                await session.execute(
                    update(DeliveryBatch)
                    .where(DeliveryBatch.id == batch_id, DeliveryBatch.lease_token == token)
                    .values(lease_until=now + dt.timedelta(seconds=LEASE_S))
                )
        except Exception:  # a failed renewal only shortens the lease; the send goes on
            log.warning("batch %s: lease renewal failed", batch_id, exc_info=True)


async def unclaim(rt: DeliveryRuntime, batch_id: int, token: str) -> None:
    async with rt.db.transaction() as session:
        await session.execute(
            update(DeliveryBatch)
            .where(DeliveryBatch.id == batch_id, DeliveryBatch.lease_token == token)
            .values(
                status=BatchStatus.QUEUED,
                lease_token=None,
                lease_until=None,
                attempts=DeliveryBatch.attempts - 1,
            )
        )


def _load_rows_statement() -> Select[Any]:
    usable = and_(
        Endpoint.address.is_not(None),
        Endpoint.status == EndpointStatus.ACTIVE,
        Endpoint.consent == Consent.GRANTED,
    )
    return (
        select(
            Delivery.id,
            Delivery.resident_id,
            Delivery.endpoint_id,
            Endpoint.address,
            Endpoint.token,
            Delivery.language,
            Delivery.ward_code,
            Delivery.attempts,
            Delivery.fallback_rank,
            case((usable, True), else_=False),
        )
        .outerjoin(Endpoint, Endpoint.id == Delivery.endpoint_id)
        .where(
            Delivery.batch_id == bindparam("batch_id"),
            status_is(Delivery.status, DeliveryStatus.QUEUED),
        )
        .order_by(Delivery.id)
    )


_LOAD_ROWS = _load_rows_statement()  # built once (see notify.delivery.sql.execute_core)


async def _load_rows(session: AsyncSession, batch_id: int) -> tuple[list[BatchRow], list[int]]:
    """The batch's rows still to send, and those whose endpoint is no longer usable."""
    rows: list[BatchRow] = []
    inactive: list[int] = []
    loaded = await execute_core(session, _LOAD_ROWS, {"batch_id": batch_id})
    for row in loaded.all():  # one fetch, not one per row
        if row[-1]:  # usable
            rows.append(BatchRow._make(row[:-1]))
        else:
            inactive.append(row[0])
    return rows, inactive


async def retry_key_for(rt: DeliveryRuntime, batch: DeliveryBatch) -> str | None:
    """LINE: the batch's one retry key, for its whole life. It is made with the batch, before
    any attempt; the set it is sent to only shrinks, and LINE answers any repeat of an
    accepted key with 409 (reported as sent), so reusing it is always safe."""
    if batch.channel != ChannelName.LINE:
        return None
    if batch.retry_key:
        return batch.retry_key
    key = str(uuid.uuid4())
    async with rt.db.transaction() as session:  # stored before the attempt that uses it
        await session.execute(
            update(DeliveryBatch).where(DeliveryBatch.id == batch.id).values(retry_key=key)
        )
    batch.retry_key = key
    return key


async def finish_empty(
    rt: DeliveryRuntime, batch_id: int, token: str, broadcast_id: int, now: dt.datetime
) -> None:
    async with rt.db.transaction() as session:
        await _release(session, batch_id, token, BatchStatus.DONE, now, None)
    await maybe_finish(rt, broadcast_id)


def _release_statement(*, done: bool) -> Update:
    values: dict[str, Any] = {
        "status": bindparam("b_status"),
        "lease_token": None,
        "lease_until": None,
        "next_attempt_at": bindparam("b_next_at", type_=UTCDateTime),
        "updated_at": _NOW,
    }
    if done:
        values["sent_at"] = _NOW
    return (
        _batches.update()
        .where(_batches.c.id == bindparam("b_id"), _batches.c.lease_token == bindparam("b_token"))
        .values(**values)
    )


_RELEASE = {True: _release_statement(done=True), False: _release_statement(done=False)}


async def _release(
    session: AsyncSession,
    batch_id: int,
    token: str,
    status: str,
    now: dt.datetime,
    next_at: dt.datetime | None,
) -> bool:
    release = _RELEASE[status == BatchStatus.DONE]
    params = {
        "b_id": batch_id,
        "b_token": token,
        "b_status": status,
        "b_now": now,
        "b_next_at": next_at,
    }
    changed = (await execute_core(session, release, params)).rowcount
    if not changed:
        _lease_lost(batch_id)
    return bool(changed)


def _lease_lost(batch_id: int) -> None:
    log.warning("batch %s: lease lost before recording (results kept)", batch_id)


async def record_attempt(
    rt: DeliveryRuntime,
    batch: DeliveryBatch,
    broadcast: Broadcast,
    rows: Sequence[BatchRow],
    results: Sequence[DeliveryResult],
    token: str,
) -> float | None:
    """Record one attempt; returns the seconds until the next try, or None when done.
    Whether the broadcast finished is the caller's to ask, after this has committed
    (`sender._attempt`: of two batches ending together, the one that asks last sees the
    other's commit; asked inside the transaction, each would see the other still busy)."""
    now = utcnow()
    if rows and not rt.db.is_sqlite and all_sent(results):  # the common case: one statement
        async with rt.db.autocommit() as conn:
            _, released = await record_all_sent(
                conn, rows, results, batch_id=batch.id, token=token, now=now
            )
        if not released:
            _lease_lost(batch.id)
        return None
    new_batches: list[tuple[int, str]] = []
    delay: float | None = None
    async with rt.db.transaction() as session:
        recorded = await record_results(
            session,
            batch.channel,
            rows,
            results,
            now=now,
            max_attempts=rt.settings.max_attempts,
        )
        if broadcast.channel_policy == "preferred" and recorded.failed_rows:
            ids = await insert_fallbacks(
                session, broadcast.id, broadcast.channels, recorded.failed_rows, now
            )
            if ids:
                new_batches = await plan_rows(rt, session, broadcast.id, ids)
        if recorded.retrying:
            delay = retry_delay(
                batch.attempts, recorded.retry_after_s, scale=rt.settings.retry_delay_scale
            )
            next_at = now + dt.timedelta(seconds=delay)
            await _release(session, batch.id, token, BatchStatus.RETRY, now, next_at)
        else:
            await _release(session, batch.id, token, BatchStatus.DONE, now, None)
    if new_batches:
        await enqueue_batches(rt.redis, new_batches)
    return delay


async def _cancel(session: AsyncSession, batch_id: int, now: dt.datetime) -> None:
    """The broadcast was cancelled: whatever this batch has not sent is cancelled."""
    await session.execute(
        update(Delivery)
        .where(Delivery.batch_id == batch_id, Delivery.status == DeliveryStatus.QUEUED)
        .values(status=DeliveryStatus.CANCELLED, updated_at=now)
    )
    await session.execute(
        update(DeliveryBatch)
        .where(DeliveryBatch.id == batch_id, _claimable(now))
        .values(status=BatchStatus.CANCELLED, lease_token=None, lease_until=None, updated_at=now)
    )


async def requeue_retries(rt: DeliveryRuntime, channel: str) -> None:
    """A lane that stops hands its channel's waiting retries back to the queue (each job
    deferred to its batch's next attempt), so no retry depends on the reconciler alone.
    The job ids name the attempt: the batch's own job may be the lane that is stopping."""
    async with rt.db.transaction() as session:
        waiting = (
            await session.execute(
                select(DeliveryBatch.id, DeliveryBatch.attempts, DeliveryBatch.next_attempt_at)
                .join(Broadcast, Broadcast.id == DeliveryBatch.broadcast_id)
                .where(
                    DeliveryBatch.channel == channel,
                    DeliveryBatch.status == BatchStatus.RETRY,
                    Broadcast.status == SENDING,
                )
            )
        ).all()
    for batch_id, attempts, next_at in waiting:
        await rt.redis.enqueue_job(
            SEND_BATCH,
            batch_id,
            channel,
            _job_id=retry_job_id(batch_id, attempts),
            _defer_until=next_at,
        )
