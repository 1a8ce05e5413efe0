"""Progress, pause, resume and cancel of a sending broadcast (used by the HTTP API).

Status changes are one guarded UPDATE each (`WHERE status = …`), audit-logged in the same
transaction. Pausing stops new batches from starting (a batch already in flight finishes);
resuming queues a `delivery.plan` job that re-queues the batches; cancelling marks the
broadcast at once and the same job cancels every row not yet sent.
"""

from __future__ import annotations

from collections import defaultdict

from arq.connections import ArqRedis
from sqlalchemy import func, select, update

from notify import audit
from notify.db import Database, utcnow
from notify.delivery.engine import CANCELLED, PAUSED, SENDING
from notify.delivery.queue import PLAN, plan_job_id
from notify.delivery.tables import Delivery, DeliveryBatch, DeliveryRun, DeliveryStatus
from notify.errors import BROADCAST_NOT_FOUND, Conflict, NotFound
from notify.models import Broadcast
from notify.web.auth import Principal

COUNTED = tuple(s.value for s in DeliveryStatus)


async def progress(db: Database, broadcast_id: int) -> dict[str, object]:
    async with db.transaction() as session:
        broadcast = await session.get(Broadcast, broadcast_id)
        if broadcast is None:
            raise NotFound(BROADCAST_NOT_FOUND)
        run = await session.get(DeliveryRun, broadcast_id)
        rows = await session.execute(
            select(Delivery.channel, Delivery.status, func.count())
            .where(Delivery.broadcast_id == broadcast_id)
            .group_by(Delivery.channel, Delivery.status)
        )
        per_channel: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(COUNTED, 0))
        for channel, status, count in rows:
            per_channel[channel][status] = int(count)
        batches = dict(
            (
                await session.execute(
                    select(DeliveryBatch.status, func.count())
                    .where(DeliveryBatch.broadcast_id == broadcast_id)
                    .group_by(DeliveryBatch.status)
                )
            ).all()
        )
    for counts in per_channel.values():
        counts["total"] = sum(counts[s] for s in COUNTED)
    return {
        "broadcast_id": broadcast_id,
        "status": broadcast.status,
        "recipients": run.recipients if run else 0,
        "snapshot_at": run.snapshot_at if run else None,
        "snapshot_complete": bool(run and run.snapshot_done),
        "finished_at": broadcast.finished_at,
        "channels": dict(per_channel),
        "batches": {str(k): int(v) for k, v in batches.items()},
    }


async def _transition(
    db: Database,
    broadcast_id: int,
    principal: Principal,
    *,
    allowed: tuple[str, ...],
    to: str,
    action: str,
) -> None:
    now = utcnow()
    async with db.transaction() as session:
        values: dict[str, object] = {"status": to, "updated_at": now}
        if to == CANCELLED:
            values["finished_at"] = now
        changed = (
            await session.execute(
                update(Broadcast)
                .where(Broadcast.id == broadcast_id, Broadcast.status.in_(allowed))
                .values(**values)
            )
        ).rowcount  # type: ignore[attr-defined]
        if not changed:
            current = (
                await session.execute(select(Broadcast.status).where(Broadcast.id == broadcast_id))
            ).scalar_one_or_none()
            if current is None:
                raise NotFound(BROADCAST_NOT_FOUND)
            raise Conflict(
                f"この配信は「{current}」のため操作できません / "
                f"cannot {action} a broadcast that is {current}"
            )
        audit.record(
            session,
            principal,
            f"broadcast.{action}",
            target_type="broadcast",
            target_id=broadcast_id,
        )


async def pause(db: Database, broadcast_id: int, principal: Principal) -> None:
    await _transition(db, broadcast_id, principal, allowed=(SENDING,), to=PAUSED, action="pause")


async def resume(db: Database, redis: ArqRedis, broadcast_id: int, principal: Principal) -> None:
    await _transition(db, broadcast_id, principal, allowed=(PAUSED,), to=SENDING, action="resume")
    await redis.enqueue_job(PLAN, broadcast_id, _job_id=plan_job_id(broadcast_id))


async def cancel(db: Database, redis: ArqRedis, broadcast_id: int, principal: Principal) -> None:
    await _transition(
        db, broadcast_id, principal, allowed=(SENDING, PAUSED), to=CANCELLED, action="cancel"
    )
    await redis.enqueue_job(PLAN, broadcast_id, _job_id=plan_job_id(broadcast_id))
