"""Progress, pause, resume and cancel of a sending broadcast over the HTTP API."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from arq.connections import ArqRedis
from sqlalchemy import select

from notify.db import Database
from notify.delivery.engine import begin_delivery
from notify.models import AuditEntry
from notify.settings import Settings
from sandbox.runner import SandboxHandles
from tests.delivery.city import Person, broadcast_status, make_broadcast, seed, times_delivered
from tests.delivery.conftest import run_worker

Headers = dict[str, dict[str, str]]


def url(broadcast_id: int, action: str = "") -> str:
    return f"/api/broadcasts/{broadcast_id}/delivery" + (f"/{action}" if action else "")


async def test_pause_then_resume(
    client: TestClient[Any, Any],
    staff_headers: Headers,
    hub_settings: Settings,
    db: Database,
    queue: ArqRedis,
    sandboxes: SandboxHandles,
    ctx: dict[str, Any],
) -> None:
    town = await seed(db, [Person(line=True) for _ in range(12)] + [Person(email=True)] * 5)
    broadcast_id = await make_broadcast(db, ["line", "email"])
    await begin_delivery(ctx, broadcast_id)  # snapshot + batches queued, nothing sent yet

    resp = await client.post(url(broadcast_id, "pause"), headers=staff_headers["pr"])
    assert resp.status == 204
    await run_worker(hub_settings)  # the queued batches see "paused" and stop
    assert sandboxes.line.base.counters.total("delivered") == 0
    assert sandboxes.smtp.state.counters.total("delivered") == 0

    resp = await client.get(url(broadcast_id), headers=staff_headers["analyst"])
    assert resp.status == 200
    progress = await resp.json()
    assert progress["status"] == "paused" and progress["recipients"] == 17
    assert progress["channels"]["line"]["queued"] == 12
    assert progress["channels"]["email"] == {
        "pending": 0,
        "held": 0,
        "queued": 5,
        "sent": 0,
        "failed": 0,
        "skipped": 0,
        "cancelled": 0,
        "total": 5,
    }
    resp = await client.post(url(broadcast_id, "pause"), headers=staff_headers["pr"])
    assert resp.status == 409  # only a sending broadcast can be paused

    resp = await client.post(url(broadcast_id, "resume"), headers=staff_headers["pr"])
    assert resp.status == 204
    await run_worker(hub_settings)
    assert times_delivered(sandboxes, town, "line") == {1}
    assert sandboxes.smtp.state.counters.total("delivered") == 5
    progress = await (await client.get(url(broadcast_id), headers=staff_headers["pr"])).json()
    assert progress["status"] == "completed"
    assert progress["channels"]["line"]["sent"] == 12 and progress["channels"]["email"]["sent"] == 5

    async with db.transaction() as session:
        actions = (
            (await session.execute(select(AuditEntry.action).order_by(AuditEntry.id)))
            .scalars()
            .all()
        )
    assert [a for a in actions if a.startswith("broadcast.")] == [
        "broadcast.pause",
        "broadcast.resume",
        "broadcast.completed",
    ]


async def test_cancel_stops_everything_not_yet_sent(
    client: TestClient[Any, Any],
    staff_headers: Headers,
    hub_settings: Settings,
    db: Database,
    sandboxes: SandboxHandles,
    ctx: dict[str, Any],
) -> None:
    await seed(db, [Person(line=True, fcm=True) for _ in range(8)])
    broadcast_id = await make_broadcast(db, ["line", "fcm"])
    await begin_delivery(ctx, broadcast_id)

    resp = await client.post(url(broadcast_id, "cancel"), headers=staff_headers["disaster"])
    assert resp.status == 204
    await run_worker(hub_settings)
    assert sandboxes.line.base.counters.total("delivered") == 0
    assert sandboxes.fcm.state.counters.total("delivered") == 0
    progress = await (await client.get(url(broadcast_id), headers=staff_headers["pr"])).json()
    assert progress["status"] == "cancelled"
    assert progress["channels"]["line"]["cancelled"] == 8
    assert progress["channels"]["fcm"]["cancelled"] == 8
    assert progress["batches"] == {"cancelled": progress["batches"]["cancelled"]}
    assert await broadcast_status(db, broadcast_id) == "cancelled"
    resp = await client.post(url(broadcast_id, "resume"), headers=staff_headers["pr"])
    assert resp.status == 409


async def test_control_needs_a_sending_role(
    client: TestClient[Any, Any], staff_headers: Headers, db: Database
) -> None:
    broadcast_id = await make_broadcast(db)
    resp = await client.post(url(broadcast_id, "pause"), headers=staff_headers["analyst"])
    assert resp.status == 403
    resp = await client.post(url(broadcast_id, "cancel"), headers=staff_headers["approver"])
    assert resp.status == 403
    resp = await client.post(url(broadcast_id, "pause"))
    assert resp.status == 401
    resp = await client.get(url(999_999), headers=staff_headers["admin"])
    assert resp.status == 404
    resp = await client.post(url(999_999, "pause"), headers=staff_headers["admin"])
    assert resp.status == 404
    assert await broadcast_status(db, broadcast_id) == "sending"
