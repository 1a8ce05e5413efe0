"""Channel policy "preferred": one endpoint per resident, and the next channel when it fails."""

from __future__ import annotations

from arq.connections import ArqRedis
from sqlalchemy import select

from notify.db import Database
from notify.delivery.tables import Delivery
from notify.settings import Settings
from sandbox.runner import SandboxHandles
from tests.delivery.city import Person, broadcast_status, make_broadcast, seed, times_delivered
from tests.delivery.conftest import run_worker


async def test_preferred_policy_sends_once_and_falls_back_to_the_next_channel(
    hub_settings: Settings, db: Database, queue: ArqRedis, sandboxes: SandboxHandles
) -> None:
    people = [
        # 1: the app is gone (uninstalled) → email, the only other endpoint
        Person(fcm=True, email=True, preferred="fcm", fcm_token="unregistered-1"),
        # 2: no preference → LINE first, nothing else
        Person(line=True, email=True),
        # 3: prefers email
        Person(line=True, email=True, preferred="email"),
        # 4: nothing to fall back to
        Person(fcm=True, preferred="fcm", fcm_token="unregistered-4"),
        # 5: the app fails → LINE comes before email in the fallback order
        Person(line=True, fcm=True, email=True, preferred="fcm", fcm_token="unregistered-5"),
    ]
    town = await seed(db, people)
    broadcast_id = await make_broadcast(db, policy="preferred")

    await queue.enqueue_job("delivery.begin", broadcast_id)
    await run_worker(hub_settings)

    line = sandboxes.line.base.counters
    mail = sandboxes.smtp.state.counters
    fcm = sandboxes.fcm.state.counters
    r1, r2, r3, r4, r5 = (town.addresses[r] for r in town.residents)
    assert fcm.get("UNREGISTERED", r1["fcm"]) == 1 and mail.get("delivered", r1["email"]) == 1
    assert line.get("delivered", r2["line"]) == 1 and mail.get("delivered", r2["email"]) == 0
    assert mail.get("delivered", r3["email"]) == 1 and line.get("delivered", r3["line"]) == 0
    assert fcm.get("UNREGISTERED", r4["fcm"]) == 1
    assert line.get("delivered", r5["line"]) == 1 and mail.get("delivered", r5["email"]) == 0
    assert line.total("delivered") == 2 and mail.total("delivered") == 2
    assert fcm.total("delivered") == 0

    async with db.transaction() as session:
        rows = (await session.execute(select(Delivery).order_by(Delivery.id))).scalars().all()
    summary = sorted(
        (town.residents.index(r.resident_id) + 1, r.channel, r.status, r.fallback_rank)
        for r in rows
    )
    assert summary == [
        (1, "email", "sent", 1),
        (1, "fcm", "failed", 0),
        (2, "line", "sent", 0),
        (3, "email", "sent", 0),
        (4, "fcm", "failed", 0),
        (5, "fcm", "failed", 0),
        (5, "line", "sent", 1),
    ]
    assert await broadcast_status(db, broadcast_id) == "completed"


async def test_policy_all_sends_on_every_channel_of_the_broadcast_only(
    hub_settings: Settings, db: Database, queue: ArqRedis, sandboxes: SandboxHandles
) -> None:
    town = await seed(db, [Person(line=True, fcm=True, email=True) for _ in range(3)])
    broadcast_id = await make_broadcast(db, ["line", "email"])
    await queue.enqueue_job("delivery.begin", broadcast_id)
    await run_worker(hub_settings)
    assert times_delivered(sandboxes, town, "line") == {1}
    assert times_delivered(sandboxes, town, "email") == {1}
    assert sandboxes.fcm.state.counters.total("delivered") == 0
