"""A broadcast reaches every recipient exactly once, in provider-sized batches."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import pytest
from arq import Retry
from arq.connections import ArqRedis
from redis.asyncio import Redis
from sqlalchemy import func, select, update

from notify.db import Database
from notify.delivery import lanes
from notify.delivery.engine import begin_delivery
from notify.delivery.queue import LANE_STARTERS, SEND_BATCH
from notify.delivery.runtime import IN_FLIGHT_PER_PROCESS, DeliveryRuntime, runtime
from notify.delivery.sender import (
    BESIDE_AFTER_TRIES,
    PASS_ON_TRIES,
    POOL_LOOPS_BESIDE_EMAIL,
    _turn,
    send_batch,
)
from notify.delivery.tables import Delivery, DeliveryBatch, DeliveryRun
from notify.models import Endpoint
from notify.settings import Settings
from notify.stats.metrics import LATENCY_KEY, MESSAGES_KEY
from notify.stats.tracking import ANY_DEVICE, verify_app_ref
from sandbox.common import FaultConfig
from sandbox.runner import SandboxHandles
from tests.delivery.city import (
    CHANNELS,
    Person,
    broadcast_status,
    delivery_counters,
    first_batch,
    make_broadcast,
    seed,
    statuses,
    times_delivered,
)
from tests.delivery.conftest import WorkerContext, run_worker

MULTICAST = "/v2/bot/message/multicast"


async def test_each_endpoint_gets_exactly_one_message(
    hub_settings: Settings, db: Database, queue: ArqRedis, sandboxes: SandboxHandles
) -> None:
    people = (
        [Person(line=True) for _ in range(620)]
        + [Person(fcm=True) for _ in range(130)]
        + [Person(email=True) for _ in range(50)]
        + [Person(line=True, fcm=True, email=True, language="en") for _ in range(8)]
    )
    town = await seed(db, people)
    broadcast_id = await make_broadcast(db)

    await queue.enqueue_job("delivery.begin", broadcast_id)
    await run_worker(hub_settings)

    # What crossed the wire: every address exactly once, nobody else.
    for channel in CHANNELS:
        addresses = town.all(channel)
        sandbox_counters = delivery_counters(sandboxes, channel)
        assert [sandbox_counters.get("delivered", a) for a in addresses] == [1] * len(addresses)
        assert sandbox_counters.total("delivered") == len(addresses)
    assert await statuses(db, broadcast_id) == {
        ("line", "sent"): 628,
        ("fcm", "sent"): 138,
        ("email", "sent"): 58,
    }
    assert await broadcast_status(db, broadcast_id) == "completed"

    # LINE: multicasts of at most 500 ids, each with a retry key and a per-ward unit.
    multicasts = sandboxes.line.base.log.entries(path=MULTICAST)
    assert all(len(m["body"]["to"]) <= 500 for m in multicasts)
    assert len({m["headers"]["x-line-retry-key"] for m in multicasts}) == len(multicasts)
    units = Counter(m["body"]["customAggregationUnits"][0] for m in multicasts)
    assert set(units) == {f"b{broadcast_id}_{w}" for w in ("141313", "141321", "141330")}
    # One rendered message per language and ward: {{ resident.ward }} is filled in.
    texts = {m["body"]["messages"][0]["text"] for m in multicasts}
    assert any("川崎区" in t for t in texts) and any("Saiwai-ku" in t for t in texts)

    async with db.transaction() as session:
        batches = (await session.execute(select(DeliveryBatch))).scalars().all()
        run = await session.get(DeliveryRun, broadcast_id)
        provider_ids = dict(
            (await session.execute(select(Delivery.channel, Delivery.provider_id))).all()
        )
        fcm_names = (
            await session.execute(select(Delivery.provider_id).where(Delivery.channel == "fcm"))
        ).scalars()
    # FCM: each recipient's own message name; LINE: the multicast's request id.
    assert len(set(fcm_names)) == 138
    assert provider_ids["fcm"].startswith("projects/") and provider_ids["line"]
    assert run is not None and run.recipients == 628 + 138 + 58 and run.finished_at
    assert all(b.status == "done" and b.attempts == 1 for b in batches)
    by_channel = Counter(b.channel for b in batches)
    # email: 40 per SMTP connection; fcm: 100 per batch (settings), per language and ward.
    assert by_channel["email"] >= 58 // 40 + 1 and by_channel["fcm"] >= 138 // 100 + 1
    assert all(b.size <= {"line": 500, "fcm": 100, "email": 40}[b.channel] for b in batches)
    assert all(b.retry_key for b in batches if b.channel == "line")

    # Push data carries the signed open reference the app returns with its device credential.
    pushes = sandboxes.fcm.state.log.entries(path="/v1/")
    refs = {p["body"]["message"]["data"]["open_ref"] for p in pushes}
    assert len(pushes) == 138 and len(refs) == 1
    pair = verify_app_ref(hub_settings, refs.pop())
    assert pair is not None and (pair.broadcast_id, pair.endpoint_id) == (broadcast_id, ANY_DEVICE)

    # /metrics counts what the workers sent (kept in Redis: several worker processes add up).
    async with Redis.from_url(hub_settings.redis_url) as redis:
        counted = await redis.hgetall(MESSAGES_KEY)
        latency = await redis.hgetall(LATENCY_KEY.format(channel="line"))
    assert {k.decode(): int(v) for k, v in counted.items()} == {
        "line|sent": 628,
        "fcm|sent": 138,
        "email|sent": 58,
    }
    assert sum(int(v) for k, v in latency.items() if k != b"sum") == len(multicasts)


async def test_an_empty_segment_completes_at_once(
    hub_settings: Settings, db: Database, queue: ArqRedis
) -> None:
    await seed(db, [Person(line=True)])
    broadcast_id = await make_broadcast(db, segment={"type": "wards", "codes": ["141372"]})
    await queue.enqueue_job("delivery.begin", broadcast_id)
    await run_worker(hub_settings)
    assert await statuses(db, broadcast_id) == {}
    assert await broadcast_status(db, broadcast_id) == "completed"


async def test_an_endpoint_gone_since_the_snapshot_is_skipped(
    hub_settings: Settings,
    db: Database,
    sandboxes: SandboxHandles,
    ctx: dict[str, Any],
) -> None:
    town = await seed(db, [Person(email=True) for _ in range(4)])
    broadcast_id = await make_broadcast(db, ["email"])
    await begin_delivery(ctx, broadcast_id)  # snapshot taken, batches queued
    gone = town.all("email")[0]
    async with db.transaction() as session:  # the resident unsubscribes meanwhile
        await session.execute(
            update(Endpoint).where(Endpoint.address == gone).values(consent="withdrawn")
        )
    await run_worker(hub_settings)
    assert sandboxes.smtp.state.counters.get("delivered", gone) == 0
    assert sandboxes.smtp.state.counters.total("delivered") == 3
    assert await statuses(db, broadcast_id) == {("email", "skipped"): 1, ("email", "sent"): 3}
    assert await broadcast_status(db, broadcast_id) == "completed"


async def test_a_template_error_fails_the_batch_without_sending(
    hub_settings: Settings, db: Database, queue: ArqRedis, sandboxes: SandboxHandles
) -> None:
    await seed(db, [Person(line=True) for _ in range(3)])
    content = {"ja": {"title": "お知らせ", "body": "{{ resident.no_such_field }}"}}
    broadcast_id = await make_broadcast(db, ["line"], content=content)
    await queue.enqueue_job("delivery.begin", broadcast_id)
    await run_worker(hub_settings)
    assert sandboxes.line.base.log.entries(path=MULTICAST) == []
    async with db.transaction() as session:
        codes = (await session.execute(select(Delivery.status, Delivery.error_code))).all()
    assert set(codes) == {("failed", "template_error")}
    assert await broadcast_status(db, broadcast_id) == "failed"


async def test_the_snapshot_places_every_row_in_a_batch_in_one_go(
    hub_settings: Settings, db: Database, queue: ArqRedis
) -> None:
    from tests.delivery.conftest import WorkerContext

    people = [Person(fcm=True, ward="141313") for _ in range(230)]
    people += [Person(fcm=True, ward="141321", language="en") for _ in range(40)]
    await seed(db, people)
    broadcast_id = await make_broadcast(db, ["fcm"])
    async with WorkerContext(hub_settings, queue) as ctx:  # chunk_size_fcm = 100
        await begin_delivery(ctx, broadcast_id)
    async with db.transaction() as session:
        batches = (
            await session.execute(select(DeliveryBatch).order_by(DeliveryBatch.id))
        ).scalars()
        layout = [(b.ward_code, b.language, b.seq, b.size) for b in batches]
        per_batch = dict(
            (
                await session.execute(
                    select(Delivery.batch_id, func.count()).group_by(Delivery.batch_id)
                )
            ).all()
        )
        statuses_ = set((await session.execute(select(Delivery.status))).scalars())
    assert statuses_ == {"queued"}  # nothing left for the Python planner
    assert sorted(layout) == [
        ("141313", "ja", 0, 100),
        ("141313", "ja", 1, 100),
        ("141313", "ja", 2, 30),
        ("141321", "en", 0, 40),
    ]
    assert sorted(per_batch.values()) == [30, 40, 100, 100]


async def test_only_the_jobs_that_start_lanes_and_pools_are_queued(
    hub_settings: Settings,
    db: Database,
    queue: ArqRedis,
    sandboxes: SandboxHandles,
    ctx: dict[str, Any],
) -> None:
    # Batches are taken from the database by lanes (FCM, email) and pools (LINE): two jobs
    # per channel start them, the rest of the batches get none, and still every endpoint
    # gets one message.
    people = [Person(fcm=True, ward="141313") for _ in range(450)] + [
        Person(email=True, ward="141313") for _ in range(130)
    ]
    people += [Person(line=True, ward="141313") for _ in range(1100)]
    town = await seed(db, people)
    broadcast_id = await make_broadcast(db, ["fcm", "email", "line"])
    await begin_delivery(ctx, broadcast_id)
    async with db.transaction() as session:
        batches = Counter((await session.execute(select(DeliveryBatch.channel))).scalars())
    assert batches == {"fcm": 5, "email": 4, "line": 3}
    jobs = [job for job in await queue.queued_jobs() if job.function == SEND_BATCH]
    starters = Counter(job.args[1] for job in jobs)
    assert starters == {"fcm": LANE_STARTERS, "email": LANE_STARTERS, "line": LANE_STARTERS}

    await run_worker(hub_settings)
    assert times_delivered(sandboxes, town, "fcm") == {1}
    assert times_delivered(sandboxes, town, "email") == {1}
    assert times_delivered(sandboxes, town, "line") == {1}
    assert await broadcast_status(db, broadcast_id) == "completed"


async def test_a_line_pool_beside_an_email_lane_keeps_few_batches_in_flight(
    hub_settings: Settings, db: Database, queue: ArqRedis, sandboxes: SandboxHandles
) -> None:
    # Each multicast takes 0.3 s at the sandbox, so a loop's next request comes at least
    # 0.3 s after its last: in any 0.25 s no more requests start than loops are running.
    settings = hub_settings.model_copy(update={"chunk_size_line": 5})
    town = await seed(db, [Person(line=True, ward="141313") for _ in range(60)])
    broadcast_id = await make_broadcast(db, ["line"])
    sandboxes.line.base.faults.configure(FaultConfig(slow_ms=300, paths=[MULTICAST]))

    async def most_started_together() -> int:
        starts = sorted(e["t"] for e in sandboxes.line.base.log.entries(path=MULTICAST))
        return max(sum(1 for t in starts if s <= t < s + 0.25) for s in starts)

    async with WorkerContext(settings, queue) as ctx:
        await begin_delivery(ctx, broadcast_id)
        rt = runtime(ctx)
        rt.lanes_here.add("email")  # this process runs the email lane: its pool sends little LINE
        await send_batch(rt, await first_batch(db), "line")
        # (On SQLite, which has no SKIP LOCKED, loops that lose a claim stop: fewer run.)
        assert 1 <= await most_started_together() <= POOL_LOOPS_BESIDE_EMAIL
        assert times_delivered(sandboxes, town, "line") == {1}

        # Without the email lane the pool's loops (eight) take the batches at once.
        sandboxes.line.base.log.clear()
        second = await make_broadcast(db, ["line"])
        await begin_delivery(ctx, second)
        rt.lanes_here.clear()
        await send_batch(rt, await first_batch(db, second), "line")
        if not db.is_sqlite:
            # as many of the second broadcast's twelve batches as there are loops
            assert await most_started_together() == min(12, IN_FLIGHT_PER_PROCESS["line"])
    assert await broadcast_status(db, broadcast_id) == "completed"
    assert await broadcast_status(db, second) == "completed"


async def test_a_job_that_meets_another_lane_comes_back_soon_then_runs_beside_it(
    hub_settings: Settings,
    db: Database,
    queue: ArqRedis,
    ctx: dict[str, Any],
    sandboxes: SandboxHandles,
) -> None:
    # This process runs the email lane. An FCM job that lands here must run again soon when
    # no FCM lane runs anywhere (a free process should take it), backing off over its tries,
    # and after BESIDE_AFTER_TRIES it runs its lane here, beside the email lane (no other
    # process took it: one worker). When an FCM lane runs elsewhere it waits, whatever the
    # try: that lane takes the batches. With no other process up it runs beside at once.
    town = await seed(db, [Person(fcm=True, ward="141313") for _ in range(10)])
    await begin_delivery(ctx, await make_broadcast(db, ["fcm"]))
    rt = runtime(ctx)
    rt.lanes_here.add("email")
    batch_id = await first_batch(db)
    await another_worker_up(rt)

    async def come_back_in(job_try: int) -> float:
        with pytest.raises(Retry) as retry:
            await send_batch(rt, batch_id, "fcm", job_try=job_try)
        return (retry.value.defer_score or 0) / 1000

    assert 0.1 <= await come_back_in(1) <= 0.15
    assert 0.4 <= await come_back_in(3) <= 0.6
    assert 1.0 <= await come_back_in(BESIDE_AFTER_TRIES - 1) <= 1.5
    await lanes.mark_lane(rt, "fcm")  # an FCM lane runs (in this test, "elsewhere")
    try:
        assert 1.0 <= await come_back_in(1) <= 2.0
        assert 1.0 <= await come_back_in(BESIDE_AFTER_TRIES + 5) <= 2.0
    finally:
        await lanes.unmark_lane(rt, "fcm")
    assert times_delivered(sandboxes, town, "fcm") == {0}
    done = await send_batch(rt, batch_id, "fcm", job_try=BESIDE_AFTER_TRIES)
    assert done == "fcm lane: 1 batches"
    assert times_delivered(sandboxes, town, "fcm") == {1}
    assert rt.lanes_here == {"email"}

    await rt.redis.delete(lanes.WORKERS_KEY)  # the other process is gone
    await lanes.announce(rt)
    second = await make_broadcast(db, ["fcm"])
    await begin_delivery(ctx, second)
    done = await send_batch(rt, await first_batch(db, second), "fcm", job_try=1)
    assert done == "fcm lane: 1 batches"
    assert rt.lanes_here == {"email"}


async def another_worker_up(rt: DeliveryRuntime) -> None:
    """Another worker process's entry among the workers up (`lanes.announce`)."""
    entry = {"elsewhere:1": time.time() + lanes.REGISTRY_TTL_S}
    await rt.redis.zadd(lanes.WORKERS_KEY, entry)  # type: ignore[arg-type]


async def test_a_job_meeting_its_lane_alone_here_goes_back_for_another_process(
    db: Database, ctx: dict[str, Any], sandboxes: SandboxHandles
) -> None:
    # A send's first poll can take both starter jobs of a channel into one process. The
    # second one must go back to the queue while this process's lane or pool is the
    # channel's only one (another process, if free, starts a second), for a few tries; once
    # another runs elsewhere, or its tries are spent, it leaves its batch to the one here.
    # With no other process up (one worker) it leaves its batch to the one here at once.
    await seed(db, [Person(fcm=True, line=True, ward="141313") for _ in range(10)])
    await begin_delivery(ctx, await make_broadcast(db, ["fcm", "line"]))
    rt = runtime(ctx)
    for channel, running_here, left_to_it in (
        ("fcm", rt.lanes_here, "in lane"),
        ("line", rt.pools, "in pool"),
    ):
        batch_id = await first_batch(db, channel=channel)
        running_here.add(channel)
        await lanes.mark_lane(rt, channel)  # this process's own entry
        try:
            assert await send_batch(rt, batch_id, channel, job_try=1) == left_to_it
            await another_worker_up(rt)
            with pytest.raises(Retry) as retry:
                await send_batch(rt, batch_id, channel, job_try=1)
            assert 0.1 <= (retry.value.defer_score or 0) / 1000 <= 0.15
            assert await send_batch(rt, batch_id, channel, job_try=PASS_ON_TRIES) == left_to_it
            elsewhere = {"elsewhere:1": time.time() + lanes.REGISTRY_TTL_S}
            await rt.redis.zadd(f"delivery:lanes:{channel}", elsewhere)  # type: ignore[arg-type]
            assert await send_batch(rt, batch_id, channel, job_try=1) == left_to_it
        finally:
            running_here.discard(channel)
            await rt.redis.delete(f"delivery:lanes:{channel}", lanes.WORKERS_KEY)
    # Nothing was sent by these jobs: the batches are the lanes' and pools' to take.
    assert sandboxes.fcm.state.counters.total("delivered") == 0
    assert sandboxes.line.base.counters.total("delivered") == 0


async def test_one_of_two_email_lanes_turns_to_fcm_when_an_fcm_job_meets_it(
    hub_settings: Settings, db: Database, queue: ArqRedis, sandboxes: SandboxHandles
) -> None:
    # A send that begins before its FCM batches are planned can get an email lane in both
    # processes. An FCM job that meets one of them makes it turn to FCM at once; it used to
    # come back again and again until email ran dry. (The other lane is only a registry
    # entry here, so this lane turns back to email once FCM is done.)
    settings = hub_settings.model_copy(update={"chunk_size_email": 4})
    people = [Person(email=True, ward="141313") for _ in range(40)]
    town = await seed(db, people + [Person(fcm=True, ward="141313") for _ in range(20)])
    broadcast_id = await make_broadcast(db, ["email", "fcm"])
    sandboxes.smtp.state.faults.configure(FaultConfig(slow_ms=50, paths=["DATA"]))
    async with WorkerContext(settings, queue) as ctx:
        await begin_delivery(ctx, broadcast_id)
        rt = runtime(ctx)
        elsewhere = {"elsewhere:1": time.time() + lanes.REGISTRY_TTL_S}
        await rt.redis.zadd("delivery:lanes:email", elsewhere)  # type: ignore[arg-type]
        email_lane = asyncio.create_task(
            send_batch(rt, await first_batch(db, channel="email"), "email")
        )
        for _ in range(500):  # until the lane has sent its first mail
            if sandboxes.smtp.state.counters.total("delivered"):
                break
            await asyncio.sleep(0.01)
        assert rt.lanes_here == {"email"}
        fcm_batch = await first_batch(db, channel="fcm")
        assert await send_batch(rt, fcm_batch, "fcm") == "email lane turns to fcm"
        assert "lane" in await email_lane
        await rt.redis.zrem("delivery:lanes:email", *elsewhere)
    first_push = min(e["t"] for e in sandboxes.fcm.state.log.entries(path="/v1/"))
    last_mail = max(e["t"] for e in sandboxes.smtp.state.log.entries(path="DATA"))
    assert first_push < last_mail  # FCM did not wait for email to run dry
    assert times_delivered(sandboxes, town, "fcm") == {1}
    assert times_delivered(sandboxes, town, "email") == {1}
    assert await broadcast_status(db, broadcast_id) == "completed"


async def test_one_worker_sends_pushes_beside_a_long_email_lane(
    hub_settings: Settings,
    db: Database,
    queue: ArqRedis,
    sandboxes: SandboxHandles,
    ctx: dict[str, Any],
) -> None:
    # One worker process: its email lane takes a few seconds (a slow mail server). The FCM
    # jobs come back quickly for a few tries, no other process takes them, and then the FCM
    # lane runs beside the email lane: the pushes do not wait for the mails to run out.
    people = [Person(email=True, ward="141313") for _ in range(48)]
    town = await seed(db, people + [Person(fcm=True, ward="141313") for _ in range(20)])
    broadcast_id = await make_broadcast(db, ["email", "fcm"])
    sandboxes.smtp.state.faults.configure(FaultConfig(slow_ms=400, paths=["DATA"]))
    await begin_delivery(ctx, broadcast_id)
    await run_worker(hub_settings)
    first_push = min(e["t"] for e in sandboxes.fcm.state.log.entries(path="/v1/"))
    mails = sorted(e["t"] for e in sandboxes.smtp.state.log.entries(path="DATA"))
    # The email lane ran longer than the FCM job's quick returns (about 3 s).
    assert mails[-1] - mails[0] > 3.5
    assert first_push < mails[-1] - 0.5
    assert times_delivered(sandboxes, town, "fcm") == {1}
    assert times_delivered(sandboxes, town, "email") == {1}
    assert await broadcast_status(db, broadcast_id) == "completed"


async def test_a_worker_is_counted_up_from_its_start_to_its_shutdown(
    hub_settings: Settings, queue: ArqRedis
) -> None:
    # Whether to send a job back "for another process" depends on this registry: a worker
    # enters it at start-up, renews it while it runs, and leaves it at shutdown; the entry
    # of one killed (never withdrawn) runs out, and the next announcement drops it.
    gone = {"killed:1": time.time() - 1}
    await queue.zadd(lanes.WORKERS_KEY, gone)  # type: ignore[arg-type]
    async with WorkerContext(hub_settings, queue) as ctx:
        rt = runtime(ctx)
        members = await queue.zrange(lanes.WORKERS_KEY, 0, -1)
        assert members == [lanes.WORKER_ID.encode()]
        assert not await lanes.others_up(rt)
        await another_worker_up(rt)
        assert await lanes.others_up(rt)
    members = await queue.zrange(lanes.WORKERS_KEY, 0, -1)
    assert members == [b"elsewhere:1"]


async def test_two_jobs_meeting_another_lane_at_once_start_one_lane_beside_it(
    db: Database, ctx: dict[str, Any], sandboxes: SandboxHandles
) -> None:
    # One worker, its email lane running: two FCM jobs that arrive together both find no
    # FCM lane and no other process up. Only one may start an FCM lane (one FCM batch in
    # flight per process bounds what a kill repeats); the other leaves its batch to it.
    town = await seed(db, [Person(fcm=True, ward="141313") for _ in range(150)])
    broadcast_id = await make_broadcast(db, ["fcm"])
    await begin_delivery(ctx, broadcast_id)  # two batches (chunk_size_fcm = 100)
    rt = runtime(ctx)
    rt.lanes_here.add("email")
    async with db.transaction() as session:
        ids = (await session.execute(select(DeliveryBatch.id).order_by(DeliveryBatch.id))).all()
    outcomes = await asyncio.gather(*(send_batch(rt, b, "fcm", job_try=1) for (b,) in ids))
    assert sorted(outcomes) == ["fcm lane: 2 batches", "in lane"]
    assert times_delivered(sandboxes, town, "fcm") == {1}
    assert rt.lanes_here == {"email"}


@pytest.mark.parametrize("channel", ["fcm", "line"])
async def test_a_job_whose_lane_here_stops_while_it_looks_starts_one(
    db: Database, ctx: dict[str, Any], sandboxes: SandboxHandles, channel: str
) -> None:
    # A job that finds its channel's lane or pool here asks Redis whether to pass its batch
    # on. If the lane stops meanwhile (it found nothing left), leaving the batch to it would
    # leave it to nobody until the reconciler's next round: the job starts one instead.
    town = await seed(db, [Person(fcm=True, line=True, ward="141313") for _ in range(10)])
    await begin_delivery(ctx, await make_broadcast(db, [channel]))
    rt = runtime(ctx)
    running_here = rt.lanes_here if channel == "fcm" else rt.pools
    running_here.add(channel)
    elsewhere = {"elsewhere:1": time.time() + lanes.REGISTRY_TTL_S}
    await rt.redis.zadd(f"delivery:lanes:{channel}", elsewhere)  # type: ignore[arg-type]
    await lanes.mark_lane(rt, channel)  # two run: the job need not pass its batch on
    job = asyncio.create_task(send_batch(rt, await first_batch(db), channel, job_try=1))
    asyncio.get_running_loop().call_soon(running_here.discard, channel)  # while it looks
    done = await job
    assert done == f"{channel} {'lane' if channel == 'fcm' else 'pool'}: 1 batches"
    assert times_delivered(sandboxes, town, channel) == {1}


async def test_a_job_that_comes_by_while_a_lane_turns_to_its_channel_leaves_it_the_batch(
    db: Database, ctx: dict[str, Any], sandboxes: SandboxHandles
) -> None:
    # A lone worker's email lane ran dry and turns to FCM. An FCM job arriving meanwhile
    # must find the FCM lane here, not start a second one beside it.
    town = await seed(db, [Person(fcm=True, ward="141313") for _ in range(10)])
    await begin_delivery(ctx, await make_broadcast(db, ["fcm"]))
    rt = runtime(ctx)
    rt.lanes_here.add("email")
    turning = asyncio.create_task(_turn(rt, "email", "fcm"))
    await asyncio.sleep(0)  # the turn has taken its first step
    done = await send_batch(rt, await first_batch(db), "fcm", job_try=1)
    assert await turning == "fcm"
    assert done == "in lane" and rt.lanes_here == {"fcm"}
    assert times_delivered(sandboxes, town, "fcm") == {0}  # the batch is the lane's


async def test_a_job_whose_lane_starts_here_while_it_meets_another_leaves_it_the_batch(
    db: Database, ctx: dict[str, Any], sandboxes: SandboxHandles
) -> None:
    # One worker, its email lane running: an FCM job meets it and asks Redis which lanes
    # run. Meanwhile another FCM job starts an FCM lane here. The first job leaves its batch
    # to that lane; it used to go back to the queue for 0.1 s (a retried job in the demo).
    await seed(db, [Person(fcm=True, ward="141313") for _ in range(10)])
    await begin_delivery(ctx, await make_broadcast(db, ["fcm"]))
    rt = runtime(ctx)
    rt.lanes_here.add("email")
    job = asyncio.create_task(send_batch(rt, await first_batch(db), "fcm", job_try=1))
    asyncio.get_running_loop().call_soon(rt.lanes_here.add, "fcm")  # while it looks
    assert await job == "in lane"
