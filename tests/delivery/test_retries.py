"""Transient failures are retried (same LINE retry key), permanent ones never; the last
failure is recorded; dead endpoints are pruned."""

from __future__ import annotations

from arq.connections import ArqRedis
from sqlalchemy import select

from notify.db import Database
from notify.delivery.tables import Delivery, DeliveryBatch
from notify.models import Endpoint
from notify.settings import Settings
from sandbox.common import FaultConfig
from sandbox.line.faults import ForcedFault
from sandbox.runner import SandboxHandles
from tests.delivery.city import (
    CHANNELS,
    Person,
    broadcast_status,
    make_broadcast,
    seed,
    statuses,
    times_delivered,
)
from tests.delivery.conftest import run_worker

MULTICAST = "/v2/bot/message/multicast"


async def test_transient_faults_are_retried_until_everyone_has_one_message(
    hub_settings: Settings, db: Database, queue: ArqRedis, sandboxes: SandboxHandles
) -> None:
    town = await seed(
        db,
        [Person(line=True) for _ in range(60)]
        + [Person(fcm=True) for _ in range(150)]
        + [Person(email=True) for _ in range(80)],
    )
    sandboxes.line.base.faults.configure(FaultConfig(error_share=0.5, seed=3, paths=[MULTICAST]))
    sandboxes.fcm.state.faults.configure(
        FaultConfig(error_share=0.3, error_status=503, seed=4, paths=["/v1/"])
    )
    sandboxes.smtp.state.faults.configure(FaultConfig(error_share=0.2, seed=5))
    broadcast_id = await make_broadcast(db)

    await queue.enqueue_job("delivery.begin", broadcast_id)
    await run_worker(hub_settings)

    for channel in CHANNELS:
        assert times_delivered(sandboxes, town, channel) == {1}, channel
    assert await statuses(db, broadcast_id) == {
        ("line", "sent"): 60,
        ("fcm", "sent"): 150,
        ("email", "sent"): 80,
    }
    faulted = [e for e in sandboxes.line.base.log.entries(path=MULTICAST) if e.get("fault")]
    assert faulted, "the seed should have failed some multicasts"
    async with db.transaction() as session:
        retried = (
            await session.execute(select(Delivery.attempts).where(Delivery.attempts > 1))
        ).scalars()
        assert len(list(retried)) > 0
    assert await broadcast_status(db, broadcast_id) == "completed"


async def test_line_accepted_but_answered_500_is_retried_with_the_same_key(
    hub_settings: Settings, db: Database, queue: ArqRedis, sandboxes: SandboxHandles
) -> None:
    town = await seed(db, [Person(line=True) for _ in range(30)])
    sandboxes.line.forced_faults.add(ForcedFault(status=500, after_accept=True, paths=[MULTICAST]))
    broadcast_id = await make_broadcast(db, ["line"])

    await queue.enqueue_job("delivery.begin", broadcast_id)
    await run_worker(hub_settings)

    by_key: dict[str, list[int]] = {}
    for request in sandboxes.line.base.log.entries(path=MULTICAST):
        by_key.setdefault(request["headers"]["x-line-retry-key"], []).append(request["status"])
    # One multicast per ward; the first was accepted but answered 500, and its retry with
    # the same key got 409 (already accepted) instead of a second delivery.
    assert sorted(by_key.values()) == [[200], [200], [500, 409]]
    keys = set(by_key)
    assert times_delivered(sandboxes, town, "line") == {1}
    async with db.transaction() as session:
        rows = (await session.execute(select(Delivery))).scalars().all()
        batches = (await session.execute(select(DeliveryBatch))).scalars().all()
    assert {r.status for r in rows} == {"sent"}
    assert {b.retry_key for b in batches} == keys
    assert sorted(b.attempts for b in batches) == [1, 1, 2]


async def test_the_last_transient_failure_is_recorded(
    hub_settings: Settings, db: Database, queue: ArqRedis, sandboxes: SandboxHandles
) -> None:
    await seed(db, [Person(fcm=True) for _ in range(5)])
    sandboxes.fcm.state.faults.configure(
        FaultConfig(error_share=1.0, error_status=503, paths=["/v1/"])
    )
    settings = hub_settings.model_copy(update={"max_attempts": 3})
    broadcast_id = await make_broadcast(db, ["fcm"])

    await queue.enqueue_job("delivery.begin", broadcast_id)
    await run_worker(settings)

    sends = sandboxes.fcm.state.log.entries(path="/v1/")
    assert len(sends) == 5 * 3  # three tries each, then final
    async with db.transaction() as session:
        rows = (await session.execute(select(Delivery))).scalars().all()
    assert {(r.status, r.attempts) for r in rows} == {("failed", 3)}
    assert all(r.error_code for r in rows)
    assert await broadcast_status(db, broadcast_id) == "failed"


async def test_permanent_failures_are_not_retried_and_prune_the_endpoint(
    hub_settings: Settings, db: Database, queue: ArqRedis, sandboxes: SandboxHandles
) -> None:
    await seed(
        db,
        [
            Person(fcm=True, fcm_token="unregistered-app-1"),
            Person(fcm=True),
            Person(email=True, email_address="gone@dead.example.jp"),
            Person(email=True),
        ],
    )
    sandboxes.smtp.mailbox.hard_bounces.add("gone@dead.example.jp")
    broadcast_id = await make_broadcast(db, ["fcm", "email"])

    await queue.enqueue_job("delivery.begin", broadcast_id)
    await run_worker(hub_settings)

    assert sandboxes.fcm.state.counters.get("UNREGISTERED", "unregistered-app-1") == 1
    assert sandboxes.smtp.state.counters.get("bounced", "gone@dead.example.jp") == 1
    assert sandboxes.fcm.state.counters.total("delivered") == 1
    assert sandboxes.smtp.state.counters.total("delivered") == 1
    async with db.transaction() as session:
        deliveries = {d.endpoint_id: d for d in (await session.execute(select(Delivery))).scalars()}
        endpoints = {e.address: e for e in (await session.execute(select(Endpoint))).scalars()}
    dead = [endpoints["unregistered-app-1"], endpoints["gone@dead.example.jp"]]
    assert [e.status for e in dead] == ["pruned", "pruned"]
    assert all(deliveries[e.id].status == "failed" for e in dead)
    assert all(deliveries[e.id].attempts == 1 for e in dead)
    assert deliveries[dead[0].id].error_code == "UNREGISTERED"
    assert sorted(e.status for e in endpoints.values()) == ["active", "active", "pruned", "pruned"]
    assert await broadcast_status(db, broadcast_id) == "completed"
