"""arq jobs of the broadcasts area (collected by worker.py).

`start_broadcast` is the scheduled hand-over to the delivery engine. It moves the broadcast
from `scheduled` to `sending` with one conditional UPDATE (status and version in the WHERE),
so of a stale job, a cancel and a reschedule racing each other exactly one wins, on SQLite and
PostgreSQL alike. arq is at-least-once: a job killed after that UPDATE runs again, finds
`sending` with its own version and repeats only the hand-over, which
`notify.delivery.engine.begin_delivery` makes idempotent.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from arq import cron
from sqlalchemy import select, update

from notify import audit
from notify.broadcasts.lifecycle import Status
from notify.broadcasts.scheduling import enqueue_start
from notify.db import Database, utcnow
from notify.models import Broadcast

log = logging.getLogger(__name__)
REQUEUE_WINDOW = dt.timedelta(minutes=10)


async def start_broadcast(ctx: dict[str, Any], broadcast_id: int, version: int) -> str:
    db: Database = ctx["db"]
    async with db.transaction() as session:
        moved = await session.execute(
            update(Broadcast)
            .where(
                Broadcast.id == broadcast_id,
                Broadcast.version == version,
                Broadcast.status == Status.SCHEDULED,
            )
            .values(status=Status.SENDING, started_at=utcnow())
        )
        if moved.rowcount == 1:  # type: ignore[attr-defined]
            audit.record(
                session,
                audit.SYSTEM,
                "broadcast.start",
                target_type="broadcast",
                target_id=broadcast_id,
                version=version,
            )
        else:
            current = (
                await session.execute(
                    select(Broadcast.status, Broadcast.version).where(Broadcast.id == broadcast_id)
                )
            ).one_or_none()
            if current is None or tuple(current) != (Status.SENDING, version):
                log.info("broadcast %s v%s: stale job (now %s)", broadcast_id, version, current)
                return "stale"
    return await _hand_over(ctx, db, broadcast_id)


async def _hand_over(ctx: dict[str, Any], db: Database, broadcast_id: int) -> str:
    try:
        from notify.delivery.engine import begin_delivery
    except ImportError as exc:
        await _fail(db, broadcast_id, f"配信エンジンがありません / delivery engine missing: {exc}")
        return "failed"
    await begin_delivery(ctx, broadcast_id)
    return "started"


async def _fail(db: Database, broadcast_id: int, reason: str) -> None:
    async with db.transaction() as session:
        await session.execute(
            update(Broadcast)
            .where(Broadcast.id == broadcast_id, Broadcast.status == Status.SENDING)
            .values(status=Status.FAILED, error=reason, finished_at=utcnow())
        )
        audit.record(
            session,
            audit.SYSTEM,
            "broadcast.fail",
            target_type="broadcast",
            target_id=broadcast_id,
            reason=reason,
        )


async def requeue_due(ctx: dict[str, Any]) -> int:
    """Enqueue (again) every scheduled broadcast due within the window: recovers a job lost
    to a Redis outage at scheduling time. arq's job id makes a repeat a no-op."""
    db: Database = ctx["db"]
    async with db.sessionmaker() as session:
        rows = (
            await session.execute(
                select(Broadcast.id, Broadcast.version, Broadcast.send_at).where(
                    Broadcast.status == Status.SCHEDULED,
                    Broadcast.send_at <= utcnow() + REQUEUE_WINDOW,
                )
            )
        ).all()
    for broadcast_id, version, send_at in rows:
        await enqueue_start(ctx["redis"], broadcast_id, version, send_at or utcnow())
    return len(rows)


FUNCTIONS: list[Any] = [start_broadcast, requeue_due]
CRON_JOBS: list[Any] = [cron(requeue_due, second={0}, run_at_startup=False)]
