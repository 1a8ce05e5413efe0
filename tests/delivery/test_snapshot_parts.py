"""A big segment is snapshotted in parts: each part is sent as soon as it is written, every
resident is covered exactly once, and the broadcast only finishes after the last part."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from arq.connections import ArqRedis
from sqlalchemy import select, update

from notify.db import Database
from notify.delivery.control import progress
from notify.delivery.engine import continue_snapshot, take_snapshot
from notify.delivery.queue import PLAN, enqueue_batches, plan_job_id
from notify.delivery.reconcile import reconcile
from notify.delivery.runtime import runtime
from notify.delivery.snapshot import Snapshot
from notify.delivery.tables import DeliveryBatch, DeliveryRun
from notify.errors import ConfigError
from notify.models import Broadcast
from notify.settings import Settings
from sandbox.runner import SandboxHandles
from tests.delivery.city import (
    Person,
    broadcast_status,
    make_broadcast,
    seed,
    statuses,
    times_delivered,
)
from tests.delivery.conftest import WorkerContext, run_worker


async def _run(db: Database, broadcast_id: int) -> DeliveryRun:
    async with db.transaction() as session:
        run = await session.get(DeliveryRun, broadcast_id)
    assert run is not None
    return run


async def _first_part(ctx: dict[str, Any], db: Database, broadcast_id: int) -> Snapshot | None:
    """What the start job does first: the run and the first part (then this "worker" stops)."""
    async with db.transaction() as session:
        broadcast = await session.get(Broadcast, broadcast_id)
    assert broadcast is not None
    return await take_snapshot(runtime(ctx), broadcast)


async def _part_of_each_batch(db: Database, broadcast_id: int) -> list[int]:
    async with db.transaction() as session:
        seqs = await session.execute(
            select(DeliveryBatch.seq).where(DeliveryBatch.broadcast_id == broadcast_id)
        )
        return sorted({seq // 1_000_000 for seq in seqs.scalars()})


async def test_each_part_is_sent_and_every_resident_is_covered_once(
    hub_settings: Settings, db: Database, queue: ArqRedis, sandboxes: SandboxHandles
) -> None:
    settings = hub_settings.model_copy(update={"snapshot_first_part": 3})
    people = [Person(line=True) for _ in range(12)]
    people += [Person(fcm=True, language="en") for _ in range(7)]
    people += [Person(email=True, line=True) for _ in range(6)]
    town = await seed(db, people)
    broadcast_id = await make_broadcast(db)

    await queue.enqueue_job("delivery.begin", broadcast_id)
    await run_worker(settings)

    for channel in ("line", "fcm", "email"):
        assert times_delivered(sandboxes, town, channel) == {1}
    assert await statuses(db, broadcast_id) == {
        ("line", "sent"): 18,
        ("fcm", "sent"): 7,
        ("email", "sent"): 6,
    }
    run = await _run(db, broadcast_id)
    # 25 residents: 3, then 12, then the last 10.
    assert (run.snapshot_parts, run.snapshot_done, run.recipients) == (3, True, 31)
    assert await _part_of_each_batch(db, broadcast_id) == [0, 1, 2]
    assert await broadcast_status(db, broadcast_id) == "completed"


async def test_between_parts_nothing_finishes_and_the_reconciler_takes_the_rest(
    hub_settings: Settings, db: Database, queue: ArqRedis, sandboxes: SandboxHandles
) -> None:
    settings = hub_settings.model_copy(update={"snapshot_first_part": 4})
    town = await seed(db, [Person(line=True) for _ in range(12)])
    broadcast_id = await make_broadcast(db, ["line"])
    async with WorkerContext(settings, queue) as ctx:
        first = await _first_part(ctx, db, broadcast_id)
        assert first is not None and first.recipients == 4
        await enqueue_batches(queue, first.batches)
        await run_worker(settings)  # sends the first part
        assert await statuses(db, broadcast_id) == {("line", "sent"): 4}
        assert await broadcast_status(db, broadcast_id) == "sending"  # not finished early
        shown = await progress(db, broadcast_id)  # what the API and the console show
        assert (shown["recipients"], shown["snapshot_complete"]) == (4, False)

        await reconcile(runtime(ctx))  # takes the remaining part and queues it
    await run_worker(settings)

    assert times_delivered(sandboxes, town, "line") == {1}
    run = await _run(db, broadcast_id)
    assert (run.snapshot_parts, run.snapshot_done, run.recipients) == (2, True, 12)
    assert await broadcast_status(db, broadcast_id) == "completed"
    shown = await progress(db, broadcast_id)
    assert (shown["recipients"], shown["snapshot_complete"]) == (12, True)


async def test_a_pause_between_parts_stops_the_snapshot_and_resume_goes_on(
    hub_settings: Settings, db: Database, queue: ArqRedis, sandboxes: SandboxHandles
) -> None:
    settings = hub_settings.model_copy(update={"snapshot_first_part": 2})
    town = await seed(db, [Person(fcm=True) for _ in range(9)])
    broadcast_id = await make_broadcast(db, ["fcm"])
    async with WorkerContext(settings, queue) as ctx:
        assert await _first_part(ctx, db, broadcast_id) is not None
        async with db.transaction() as session:
            await session.execute(
                update(Broadcast).where(Broadcast.id == broadcast_id).values(status="paused")
            )
        assert await continue_snapshot(runtime(ctx), broadcast_id) == 0
        assert (await _run(db, broadcast_id)).snapshot_parts == 1

    async with db.transaction() as session:  # what resume does: sending again, then a plan
        await session.execute(
            update(Broadcast).where(Broadcast.id == broadcast_id).values(status="sending")
        )
    await queue.enqueue_job(PLAN, broadcast_id, _job_id=plan_job_id(broadcast_id))
    await run_worker(settings)

    assert times_delivered(sandboxes, town, "fcm") == {1}
    run = await _run(db, broadcast_id)
    assert (run.snapshot_parts, run.snapshot_done, run.recipients) == (2, True, 9)
    assert await broadcast_status(db, broadcast_id) == "completed"


async def test_two_runs_taking_parts_at_once_cover_each_resident_once(
    hub_settings: Settings, db: Database, queue: ArqRedis, sandboxes: SandboxHandles
) -> None:
    settings = hub_settings.model_copy(update={"snapshot_first_part": 2})
    town = await seed(db, [Person(line=True) for _ in range(30)])
    broadcast_id = await make_broadcast(db, ["line"])
    async with WorkerContext(settings, queue) as ctx:
        assert await _first_part(ctx, db, broadcast_id) is not None
        taken = await asyncio.gather(
            continue_snapshot(runtime(ctx), broadcast_id),
            continue_snapshot(runtime(ctx), broadcast_id),
        )
        await reconcile(runtime(ctx))  # whatever a lost race left
    await run_worker(settings)

    assert times_delivered(sandboxes, town, "line") == {1}
    run = await _run(db, broadcast_id)
    assert (run.snapshot_done, run.recipients) == (True, 30)
    assert run.snapshot_parts == 1 + sum(taken)


@pytest.mark.parametrize("size", ["0", "-5", "many"])
def test_a_first_part_out_of_range_is_a_clear_config_error(size: str) -> None:
    with pytest.raises(ConfigError, match="snapshot_first_part"):
        Settings.from_env({"HUB_SNAPSHOT_FIRST_PART": size})
