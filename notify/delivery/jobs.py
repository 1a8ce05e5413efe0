"""arq jobs of the delivery area (collected by worker.py).

    delivery.begin(broadcast_id)     begin_delivery as a job (snapshot + plan), id per broadcast
    delivery.send_batch(batch_id)    starts its channel's lane (FCM, email) or pool (LINE)
                                     with this batch; only a few batches get a job
    delivery.plan(broadcast_id)      reconcile one broadcast (resume, cancel, fallbacks)
    delivery.reconcile               cron, every 10 s: the database is the record

`startup` adds to ctx: `channels` (from channels.registry, unless the caller already put
adapters there), `delivery` (the shared runtime: rate limiter, render cache, lanes) and
`delivery_presence` (the task that keeps this process's entry among the workers up).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from arq import cron, func

from notify.delivery import lanes
from notify.delivery.engine import begin_delivery
from notify.delivery.queue import BEGIN, PLAN, RECONCILE, SEND_BATCH
from notify.delivery.reconcile import reconcile, reconcile_broadcast
from notify.delivery.runtime import build_runtime, runtime
from notify.delivery.sender import send_batch

log = logging.getLogger(__name__)

# A send attempt is one provider call plus bookkeeping; rate-limit waits longer than ten
# seconds re-queue the job instead of sleeping in it.
SEND_TIMEOUT_S = 120
RECONCILE_EVERY_S = 10


async def startup(ctx: dict[str, Any]) -> None:
    if "channels" not in ctx:
        from channels.registry import build_channels

        ctx["channels"] = build_channels(ctx["settings"])
    rt = ctx["delivery"] = build_runtime(ctx, ctx["channels"])
    await lanes.announce(rt)
    ctx["delivery_presence"] = asyncio.create_task(lanes.keep_announcing(rt))


async def shutdown(ctx: dict[str, Any]) -> None:
    presence = ctx.pop("delivery_presence", None)
    if presence is not None:
        presence.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await presence
        try:
            await lanes.withdraw(runtime(ctx))
        except Exception:  # the entry runs out on its own
            log.warning("could not withdraw this worker's entry from Redis", exc_info=True)
    channels = ctx.pop("channels", None) or {}
    for adapter in channels.values():
        try:
            await adapter.close()
        except Exception:  # closing must not stop the other adapters from closing
            log.warning("closing %s failed", adapter, exc_info=True)


async def begin_job(ctx: dict[str, Any], broadcast_id: int) -> None:
    await begin_delivery(ctx, broadcast_id)


async def send_batch_job(ctx: dict[str, Any], batch_id: int, channel: str | None = None) -> str:
    return await send_batch(runtime(ctx), batch_id, channel, job_try=ctx.get("job_try", 1))


async def plan_job(ctx: dict[str, Any], broadcast_id: int) -> int:
    return await reconcile_broadcast(runtime(ctx), broadcast_id)


async def reconcile_job(ctx: dict[str, Any]) -> int:
    return await reconcile(runtime(ctx))


FUNCTIONS: list[Any] = [
    func(begin_job, name=BEGIN, keep_result=0, max_tries=100, timeout=900),
    # max_tries is high on purpose: the database counts real attempts (settings.max_attempts);
    # arq's tries also count lease waits and re-runs after a killed worker.
    func(
        send_batch_job, name=SEND_BATCH, keep_result=0, max_tries=1_000_000, timeout=SEND_TIMEOUT_S
    ),
    func(plan_job, name=PLAN, keep_result=0, max_tries=100, timeout=900),
]
CRON_JOBS: list[Any] = [
    cron(
        reconcile_job,
        name=RECONCILE,
        second=set(range(0, 60, RECONCILE_EVERY_S)),
        keep_result=0,
        timeout=900,
        unique=True,
    ),
]
