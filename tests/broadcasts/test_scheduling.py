"""Scheduling through arq on a real Redis with a burst worker: stale jobs never send."""

from __future__ import annotations

from typing import Any

from arq import create_pool
from arq.connections import ArqRedis
from arq.jobs import Job, JobStatus

from notify.broadcasts.jobs import requeue_due
from notify.broadcasts.scheduling import job_id
from notify.queue_redis import queue_redis_settings
from notify.settings import Settings
from tests.plugins.workers import run_burst_worker

from .conftest import Api


async def result(redis: ArqRedis, broadcast_id: int, version: int) -> Any:
    return await Job(job_id(broadcast_id, version), redis).result(timeout=10)


async def starts(api: Api, broadcast_id: int) -> list[dict[str, Any]]:
    history = await api.ok("pr", "GET", f"/api/broadcasts/{broadcast_id}/history")
    return [h for h in history if h["action"] == "broadcast.start"]


async def schedule_now(api: Api, b: dict[str, Any]) -> dict[str, Any]:
    path = f"/api/broadcasts/{b['id']}/schedule"
    return await api.ok("pr", "POST", path, {"version": b["version"]})  # type: ignore[no-any-return]


async def test_rescheduled_broadcast_runs_only_its_newest_job(api: Api, settings: Settings) -> None:
    b = await api.approved()
    first = await schedule_now(api, b)
    second = await schedule_now(api, first)  # reschedule: a new version, a new job
    redis = await create_pool(queue_redis_settings(settings.redis_url or ""))
    try:
        queued = {j.job_id for j in await redis.queued_jobs()}
        assert queued == {job_id(b["id"], first["version"]), job_id(b["id"], second["version"])}
        await run_burst_worker(settings)
        assert await result(redis, b["id"], first["version"]) == "stale"
        assert await result(redis, b["id"], second["version"]) == "started"
    finally:
        await redis.aclose()
    after = await api.ok("pr", "GET", f"/api/broadcasts/{b['id']}")
    assert after["status"] in ("sending", "completed") and after["started_at"]
    [start] = await starts(api, b["id"])
    assert start["detail"]["version"] == second["version"] and start["actor_type"] == "system"


async def test_cancelled_broadcasts_job_does_nothing(api: Api, settings: Settings) -> None:
    b = await schedule_now(api, await api.approved())
    cancelled = await api.ok(
        "pr", "POST", f"/api/broadcasts/{b['id']}/cancel", {"version": b["version"]}
    )
    redis = await create_pool(queue_redis_settings(settings.redis_url or ""))
    try:
        await run_burst_worker(settings)
        assert await result(redis, b["id"], b["version"]) == "stale"
    finally:
        await redis.aclose()
    after = await api.ok("pr", "GET", f"/api/broadcasts/{b['id']}")
    assert (after["status"], after["version"], after["started_at"]) == (
        "cancelled",
        cancelled["version"],
        None,
    )
    assert await starts(api, b["id"]) == []


async def test_a_job_lost_from_redis_is_requeued(api: Api, settings: Settings) -> None:
    b = await schedule_now(api, await api.approved())
    redis = await create_pool(queue_redis_settings(settings.redis_url or ""))
    try:
        await redis.flushdb()  # Redis lost the job (restart without persistence)
        assert await redis.queued_jobs() == []
        assert await requeue_due({"db": api.db, "redis": redis}) == 1
        assert await requeue_due({"db": api.db, "redis": redis}) == 1  # same job id: no duplicate
        assert len(await redis.queued_jobs()) == 1
        await run_burst_worker(settings)
        assert await result(redis, b["id"], b["version"]) == "started"
        status = await Job(job_id(b["id"], b["version"]), redis).status()
        assert status == JobStatus.complete
    finally:
        await redis.aclose()
    assert len(await starts(api, b["id"])) == 1
