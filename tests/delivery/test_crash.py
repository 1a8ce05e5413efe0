"""Crash safety: a killed job's re-run, a Redis wipe, a lost start job.

A worker killed with -9 leaves exactly this behind: a batch 'sending' under a lease nobody
renews, its rows still 'queued', and (maybe) a provider that already accepted the send. The
tests build that state with the real adapter against the real sandbox, then let the real
worker (or the reconciler) take over.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

import asyncpg
import pytest
from arq import Retry
from arq.connections import ArqRedis
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError

from channels.base import DeliveryResult, SendContext
from notify.db import Database, utcnow
from notify.delivery import batches, lanes, sender
from notify.delivery.engine import begin_delivery
from notify.delivery.reconcile import reconcile
from notify.delivery.runtime import runtime
from notify.delivery.sender import _recipients
from notify.delivery.tables import BatchStatus, Delivery, DeliveryBatch
from notify.models import Broadcast
from notify.settings import Settings
from sandbox.runner import SandboxHandles
from tests.delivery.city import (
    CHANNELS,
    Person,
    broadcast_status,
    make_broadcast,
    seed,
    times_delivered,
)
from tests.delivery.conftest import run_worker

MULTICAST = "/v2/bot/message/multicast"


async def send_and_die(ctx: dict[str, Any], batch_id: int) -> None:
    """What a worker killed right after the provider call does: claim, send, record nothing."""
    rt = runtime(ctx)
    attempt = await batches.open_attempt(rt, batch_id)
    assert isinstance(attempt, batches.Attempt)
    batch, broadcast, rows = attempt.batch, attempt.broadcast, attempt.rows
    message = rt.renders.render(broadcast, batch.channel, batch.language, batch.ward_code)
    context = SendContext(broadcast.id, idempotency_key=batch.retry_key)
    results = await rt.channels[batch.channel].send_batch(
        _recipients(rt, batch.channel, rows, broadcast.id), message, context
    )
    assert {r.outcome for r in results} == {"sent"}
    async with rt.db.transaction() as session:  # ... and the lease runs out, unrenewed
        await session.execute(
            update(DeliveryBatch)
            .where(DeliveryBatch.id == batch_id)
            .values(lease_until=utcnow() - dt.timedelta(seconds=1))
        )


async def fcm_send_begun(db: Database, ctx: dict[str, Any], people: int) -> int:
    """A sending FCM broadcast to `people` new residents, snapshotted and planned."""
    await seed(db, [Person(fcm=True, ward="141313") for _ in range(people)])
    broadcast_id = await make_broadcast(db, ["fcm"])
    await begin_delivery(ctx, broadcast_id)
    return broadcast_id


async def only_batch(db: Database, channel: str) -> int:
    async with db.transaction() as session:
        return (
            await session.execute(select(DeliveryBatch.id).where(DeliveryBatch.channel == channel))
        ).scalar_one()


async def test_a_killed_line_job_rerun_gets_409_and_sends_nothing_twice(
    hub_settings: Settings,
    db: Database,
    sandboxes: SandboxHandles,
    ctx: dict[str, Any],
) -> None:
    town = await seed(db, [Person(line=True, ward="141313") for _ in range(25)])
    broadcast_id = await make_broadcast(db, ["line"])
    await begin_delivery(ctx, broadcast_id)  # one batch, its job queued in Redis
    await send_and_die(ctx, await only_batch(db, "line"))
    assert sandboxes.line.base.counters.total("delivered") == 25

    await run_worker(hub_settings)  # arq runs the job again

    requests = sandboxes.line.base.log.entries(path=MULTICAST)
    assert [r["status"] for r in requests] == [200, 409]
    assert len({r["headers"]["x-line-retry-key"] for r in requests}) == 1
    assert times_delivered(sandboxes, town, "line") == {1}
    assert await broadcast_status(db, broadcast_id) == "completed"


async def test_fcm_repeat_after_a_kill_is_bounded_by_the_batch_in_flight(
    hub_settings: Settings,
    db: Database,
    sandboxes: SandboxHandles,
    ctx: dict[str, Any],
) -> None:
    # FCM has no idempotency key: the batch the killed worker had in flight goes again, and
    # nothing else does (a worker sends one FCM batch at a time; results are recorded per batch).
    town = await seed(db, [Person(fcm=True, ward="141313") for _ in range(250)])
    broadcast_id = await make_broadcast(db, ["fcm"])
    await begin_delivery(ctx, broadcast_id)  # 100 + 100 + 50 (chunk_size_fcm = 100)
    async with db.transaction() as session:
        first = (
            await session.execute(select(DeliveryBatch.id).order_by(DeliveryBatch.id).limit(1))
        ).scalar_one()
        in_flight = set(
            (
                await session.execute(
                    select(Delivery.endpoint_id).where(Delivery.batch_id == first)
                )
            ).scalars()
        )
    await send_and_die(ctx, first)
    await run_worker(hub_settings)

    counts = [sandboxes.fcm.state.counters.get("delivered", a) for a in town.all("fcm")]
    assert counts.count(2) == len(in_flight) == 100 and counts.count(1) == 150
    assert await broadcast_status(db, broadcast_id) == "completed"


async def test_a_lane_takes_over_a_batch_whose_worker_died(
    db: Database, sandboxes: SandboxHandles, ctx: dict[str, Any]
) -> None:
    # The job that would rescue the batch may reach a process whose FCM lane is running and
    # leave the batch to that lane ("in lane"): the lane's next must include it.
    await fcm_send_begun(db, ctx, 250)
    async with db.transaction() as session:
        first = (
            await session.execute(select(DeliveryBatch.id).order_by(DeliveryBatch.id).limit(1))
        ).scalar_one()
    await send_and_die(ctx, first)
    taken = await batches.open_attempt(runtime(ctx), None, channel="fcm")
    assert isinstance(taken, batches.Attempt) and taken.batch.id == first


async def test_a_lane_that_stops_gives_back_the_batch_it_claimed_ahead(
    hub_settings: Settings,
    db: Database,
    sandboxes: SandboxHandles,
    ctx: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A lane claims its next batch while it sends one. When it stops (here: its time budget
    # is spent after one batch) that claim goes back at once, unsent and its attempt not
    # counted, rather than when its lease runs out.
    town = await seed(db, [Person(fcm=True, ward="141313") for _ in range(250)])
    broadcast_id = await make_broadcast(db, ["fcm"])
    await begin_delivery(ctx, broadcast_id)  # 100 + 100 + 50 (chunk_size_fcm = 100)
    first, ahead, _ = await _batches(db, "fcm")
    monkeypatch.setattr(sender, "LANE_BUDGET_S", 0.0)
    with pytest.raises(Retry):  # the lane hands over to a fresh run of its job
        await sender.send_batch(runtime(ctx), first, "fcm")
    assert sandboxes.fcm.state.counters.total("delivered") == 100

    query = select(DeliveryBatch.status, DeliveryBatch.lease_token, DeliveryBatch.attempts)
    for _ in range(100):  # the claim goes back in the background
        async with db.transaction() as session:
            state = (await session.execute(query.where(DeliveryBatch.id == ahead))).one()
        if state.status == BatchStatus.QUEUED:
            break
        await asyncio.sleep(0.05)
    assert tuple(state) == ("queued", None, 0)

    monkeypatch.undo()  # a lane with no time budget would hand over for ever
    await run_worker(hub_settings)
    assert times_delivered(sandboxes, town, "fcm") == {1}
    assert await broadcast_status(db, broadcast_id) == "completed"


async def test_after_a_redis_wipe_the_reconciler_requeues_what_is_left(
    hub_settings: Settings,
    db: Database,
    queue: ArqRedis,
    sandboxes: SandboxHandles,
    ctx: dict[str, Any],
) -> None:
    town = await seed(
        db,
        [Person(line=True) for _ in range(30)]
        + [Person(fcm=True) for _ in range(30)]
        + [Person(email=True) for _ in range(30)],
    )
    broadcast_id = await make_broadcast(db)
    await begin_delivery(ctx, broadcast_id)
    line_batch = (await _batches(db, "line"))[0]
    await send_and_die(ctx, line_batch)  # one batch was mid-flight when Redis went away
    await queue.flushall()

    await run_worker(hub_settings)  # nothing: the queue is gone
    assert sandboxes.fcm.state.counters.total("delivered") == 0

    requeued = await reconcile(runtime(ctx))
    assert requeued == len(await _batches(db))
    await run_worker(hub_settings)
    for channel in CHANNELS:
        assert times_delivered(sandboxes, town, channel) == {1}, channel
    assert await broadcast_status(db, broadcast_id) == "completed"
    assert await reconcile(runtime(ctx)) == 0  # nothing left to do


async def test_a_lost_start_job_is_started_by_the_reconciler(
    hub_settings: Settings, db: Database, sandboxes: SandboxHandles, ctx: dict[str, Any]
) -> None:
    town = await seed(db, [Person(line=True) for _ in range(5)])
    broadcast_id = await make_broadcast(db, ["line"])
    async with db.transaction() as session:  # 'sending' for two minutes, never snapshotted
        await session.execute(
            update(Broadcast)
            .where(Broadcast.id == broadcast_id)
            .values(started_at=utcnow() - dt.timedelta(minutes=2))
        )
    await reconcile(runtime(ctx))  # snapshot, plan, queue: all in one pass
    await run_worker(hub_settings)
    assert times_delivered(sandboxes, town, "line") == {1}
    assert await broadcast_status(db, broadcast_id) == "completed"


async def _batches(db: Database, channel: str | None = None) -> list[int]:
    query = select(DeliveryBatch.id).order_by(DeliveryBatch.id)
    if channel:
        query = query.where(DeliveryBatch.channel == channel)
    async with db.transaction() as session:
        return list((await session.execute(query)).scalars())


async def test_a_job_whose_worker_died_before_the_claim_is_rescued(
    hub_settings: Settings,
    db: Database,
    queue: ArqRedis,
    sandboxes: SandboxHandles,
    ctx: dict[str, Any],
) -> None:
    # kill -9 between arq picking the job and the claim: the job stays "in progress" (for
    # arq, until the longest job timeout + 10 s) and the batch stays 'queued'.
    town = await seed(db, [Person(line=True, ward="141313") for _ in range(5)])
    broadcast_id = await make_broadcast(db, ["line"])
    await begin_delivery(ctx, broadcast_id)
    batch_id = await only_batch(db, "line")
    await queue.set(f"arq:in-progress:delivery:batch:{batch_id}", b"1", px=4000)
    assert await reconcile(runtime(ctx)) == 0  # a fresh batch: its job may still claim it
    async with db.transaction() as session:
        await session.execute(
            update(DeliveryBatch)
            .where(DeliveryBatch.id == batch_id)
            .values(updated_at=utcnow() - dt.timedelta(minutes=2))
        )
    assert await reconcile(runtime(ctx)) == 1  # stalled: a rescue job takes over

    await run_worker(hub_settings)
    assert times_delivered(sandboxes, town, "line") == {1}
    assert len(sandboxes.line.base.log.entries(path=MULTICAST)) == 1
    assert await broadcast_status(db, broadcast_id) == "completed"


async def test_the_reconciler_leaves_queued_batches_to_a_running_lane(
    db: Database, queue: ArqRedis, sandboxes: SandboxHandles, ctx: dict[str, Any]
) -> None:
    # A lane takes its channel's batches from the database, and the jobs that met it left
    # their batches to it: queueing them again would only make more jobs that do the same.
    await fcm_send_begun(db, ctx, 250)
    await queue.flushall()  # the batch jobs are gone …
    rt = runtime(ctx)
    await lanes.mark_lane(rt, "fcm")  # … and an FCM lane runs
    assert await reconcile(rt) == 0
    await lanes.unmark_lane(rt, "fcm")  # the lane stopped (or its entry went stale)
    assert await reconcile(rt) == len(await _batches(db, "fcm")) == 3


async def test_lanes_claiming_at_once_never_share_a_batch(
    db: Database, sandboxes: SandboxHandles, ctx: dict[str, Any]
) -> None:
    # A lane's next batch is found and claimed in one statement (FOR UPDATE SKIP LOCKED on
    # PostgreSQL): twelve claims at once take the ten batches once each and find none left;
    # a batch of a broadcast that is not sending is never taken.
    await fcm_send_begun(db, ctx, 1000)  # ten batches of 100 (chunk_size_fcm = 100)
    rt = runtime(ctx)
    claims = await asyncio.gather(
        *(batches.open_attempt(rt, None, channel="fcm") for _ in range(12))
    )
    taken = [c for c in claims if isinstance(c, batches.Attempt)]
    assert sorted(c.batch.id for c in taken) == await _batch_ids(db)
    assert [c for c in claims if not isinstance(c, batches.Attempt)] == ["none", "none"]
    assert all(c.batch.attempts == 1 and len(c.rows) == 100 for c in taken)

    paused = await make_broadcast(db, ["fcm"])
    await begin_delivery(ctx, paused)
    async with db.transaction() as session:
        await session.execute(
            update(Broadcast).where(Broadcast.id == paused).values(status="paused")
        )
    assert await batches.open_attempt(rt, None, channel="fcm") == "none"


async def _batch_ids(db: Database) -> list[int]:
    async with db.transaction() as session:
        ids = await session.execute(select(DeliveryBatch.id).order_by(DeliveryBatch.id))
    return list(ids.scalars())


@pytest.mark.parametrize("names", ["one per request", "one per recipient"])
async def test_a_record_after_the_lease_was_lost_keeps_the_results_and_the_new_holder(
    db: Database,
    sandboxes: SandboxHandles,
    ctx: dict[str, Any],
    names: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A run whose lease ran out while it sent (a stalled process) still records what crossed
    # the wire, but the batch stays with the run that took it over. On PostgreSQL an
    # all-sent batch is recorded by one statement (`record.record_all_sent`), elsewhere by
    # the transaction: both must agree.
    await fcm_send_begun(db, ctx, 30)
    rt = runtime(ctx)
    attempt = await batches.open_attempt(rt, None, channel="fcm")
    assert isinstance(attempt, batches.Attempt) and len(attempt.rows) == 30
    async with db.transaction() as session:  # another run takes the batch over
        await session.execute(
            update(DeliveryBatch)
            .where(DeliveryBatch.id == attempt.batch.id)
            .values(lease_token="taken-over-by-another-run")
        )
    if names == "one per request":
        results = [DeliveryResult.sent("7d1f3c2e-0b5a-4e8f-9a6b-2c4d5e6f7a8b")] * 30
    else:
        results = [DeliveryResult.sent(f"projects/p/messages/{i}") for i in range(30)]

    with caplog.at_level(logging.WARNING, logger="notify.delivery.batches"):
        next_try = await batches.record_attempt(
            rt, attempt.batch, attempt.broadcast, attempt.rows, results, attempt.token
        )

    assert next_try is None
    assert "lease lost before recording" in caplog.text
    async with db.transaction() as session:
        recorded = (
            await session.execute(
                select(Delivery.status, Delivery.provider_id, Delivery.attempts)
                .where(Delivery.batch_id == attempt.batch.id)
                .order_by(Delivery.id)
            )
        ).all()
        batch = await session.get(DeliveryBatch, attempt.batch.id)
    assert [tuple(r) for r in recorded] == [("sent", r.provider_id, 1) for r in results]
    assert batch is not None and batch.status == BatchStatus.SENDING
    assert batch.lease_token == "taken-over-by-another-run"


async def test_a_broadcast_read_at_its_first_claim_still_pauses_at_the_next(
    db: Database, sandboxes: SandboxHandles, ctx: dict[str, Any]
) -> None:
    # A process reads a broadcast once, at its first claim, and keeps it for the next ones
    # (its content is frozen once approved); whether it is still sending is asked by every
    # claim, of the database.
    broadcast_id = await fcm_send_begun(db, ctx, 300)  # three batches of 100
    rt = runtime(ctx)
    first = await batches.open_attempt(rt, None, channel="fcm")
    assert isinstance(first, batches.Attempt) and broadcast_id in rt.sending

    for status, expect_claim in (("paused", False), ("cancelled", False), ("sending", True)):
        async with db.transaction() as session:
            await session.execute(
                update(Broadcast).where(Broadcast.id == broadcast_id).values(status=status)
            )
        claim = await batches.open_attempt(rt, None, channel="fcm")
        assert isinstance(claim, batches.Attempt) is expect_claim, status
    assert isinstance(claim, batches.Attempt) and claim.broadcast is first.broadcast


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_a_claim_whose_rows_cannot_be_read_is_handed_back_at_once(
    db_url: str, db: Database, sandboxes: SandboxHandles, ctx: dict[str, Any]
) -> None:
    # A lane's claim commits on its own, before its rows are read (no transaction around
    # the two). If the read fails, the batch goes back to the queue at once instead of
    # waiting out its lease. The failure here is a real one: the read waits on a lock that
    # another session holds, and PostgreSQL cancels it (PostgreSQL only: SQLite has no
    # other session's statement to cancel).
    await fcm_send_begun(db, ctx, 30)
    batch_id = await only_batch(db, "fcm")
    blocker = await asyncpg.connect(db_url)
    try:
        locked = blocker.transaction()
        await locked.start()
        await blocker.execute("LOCK TABLE endpoints IN ACCESS EXCLUSIVE MODE")
        claim = asyncio.create_task(batches.open_attempt(runtime(ctx), None, channel="fcm"))
        waiting = await _backend_waiting_on_a_lock(blocker)
        await blocker.execute("SELECT pg_cancel_backend($1)", waiting)
        with pytest.raises(DBAPIError, match="cancel"):
            await claim
        await locked.rollback()
    finally:
        await blocker.close()

    async with db.transaction() as session:
        batch = await session.get(DeliveryBatch, batch_id)
    assert batch is not None
    assert (batch.status, batch.lease_token, batch.attempts) == (BatchStatus.QUEUED, None, 0)
    again = await batches.open_attempt(runtime(ctx), None, channel="fcm")
    assert isinstance(again, batches.Attempt) and again.batch.id == batch_id
    assert len(again.rows) == 30


async def _backend_waiting_on_a_lock(conn: asyncpg.Connection) -> int:
    """The pid of the backend of this database that waits on a lock (within 10 s)."""
    for _ in range(200):
        pid = await conn.fetchval(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )
        if pid is not None:
            return int(pid)
        await asyncio.sleep(0.05)
    raise AssertionError("no backend came to wait on the lock")
