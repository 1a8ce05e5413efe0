"""Delivery tests: the real sandboxes on 127.0.0.1, real Redis, SQLite and PostgreSQL, and
worker.py's worker in burst mode running this area's jobs."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from arq import create_pool
from arq.connections import ArqRedis

from notify.city import load_city
from notify.db import Database
from notify.delivery import jobs as delivery_jobs
from notify.embedded_redis import EmbeddedRedis
from notify.queue_redis import queue_redis_settings
from notify.settings import Settings
from sandbox.runner import SandboxHandles
from tests.conftest import migrated_pg_database, require_postgres
from tests.plugins.sandboxes import sandbox_settings
from tests.plugins.workers import run_burst_worker

# --- isolation: a private Redis and PostgreSQL database for this area's tests -------------
# Several test sessions share the development machine; delivery tests run workers that drain
# a whole queue and would eat (or lose) other sessions' jobs on the shared Redis db.


@pytest.fixture(scope="session")
def _delivery_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    redis = EmbeddedRedis(tmp_path_factory.mktemp("delivery-redis"))
    url = redis.start()
    yield url
    redis.stop()


@pytest.fixture
async def redis_url(_delivery_redis: str) -> AsyncIterator[str]:
    client = aioredis.from_url(_delivery_redis)
    await client.flushdb()
    await client.aclose()
    yield _delivery_redis


@pytest.fixture(scope="session")
def _pg_database(request: pytest.FixtureRequest) -> Iterator[str]:
    require_postgres()
    with migrated_pg_database(f"hub_test_delivery_{os.getpid()}") as url:
        yield url


# --- the providers and the worker ---------------------------------------------------------


@pytest.fixture
def hub_settings(settings: Settings, sandboxes: SandboxHandles) -> Settings:
    return sandbox_settings(
        settings,
        sandboxes,
        chunk_size_email=40,
        chunk_size_fcm=100,
        retry_delay_scale=0.01,
        rate_limits_enabled=False,
    )


@pytest.fixture
async def db(hub_settings: Settings) -> AsyncIterator[Database]:
    database = Database.from_settings(hub_settings)
    yield database
    await database.close()


@pytest.fixture
async def queue(hub_settings: Settings) -> AsyncIterator[ArqRedis]:
    assert hub_settings.redis_url
    pool = await create_pool(queue_redis_settings(hub_settings.redis_url))
    yield pool
    await pool.aclose()


async def _startup(ctx: dict[str, Any]) -> None:
    ctx["city"] = load_city(ctx["settings"].city_config)
    ctx["db"] = Database.from_settings(ctx["settings"])
    await delivery_jobs.startup(ctx)


async def _shutdown(ctx: dict[str, Any]) -> None:
    await delivery_jobs.shutdown(ctx)
    await ctx["db"].close()


async def run_worker(settings: Settings, **overrides: Any) -> None:
    """worker.py's worker with this area's jobs, until the queue (deferred jobs too) is empty."""
    options: dict[str, Any] = {
        "poll_delay": 0.02,
        "functions": delivery_jobs.FUNCTIONS,
        "on_startup": _startup,
        "on_shutdown": _shutdown,
    }
    options.update(overrides)
    await run_burst_worker(settings, **options)


class WorkerContext:
    """The ctx a worker's start-up builds, for calling engine functions directly."""

    def __init__(self, settings: Settings, redis: ArqRedis) -> None:
        self.ctx: dict[str, Any] = {"settings": settings, "redis": redis}

    async def __aenter__(self) -> dict[str, Any]:
        await _startup(self.ctx)
        return self.ctx

    async def __aexit__(self, *exc: object) -> None:
        await _shutdown(self.ctx)


@pytest.fixture
async def ctx(hub_settings: Settings, queue: ArqRedis) -> AsyncIterator[dict[str, Any]]:
    async with WorkerContext(hub_settings, queue) as built:
        yield built
