"""Delivery tests: the real sandboxes on 127.0.0.1, real Redis, SQLite and PostgreSQL, and
worker.py's worker in burst mode running this area's jobs."""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings

from notify.city import load_city
from notify.db import Database
from notify.delivery import jobs as delivery_jobs
from notify.settings import Settings
from sandbox.line import SANDBOX_TOKEN
from sandbox.runner import SandboxHandles, start_sandboxes
from worker import build_worker


@pytest.fixture
async def sandboxes(tmp_path: Path, reference_dir: Path) -> AsyncIterator[SandboxHandles]:
    handles = await start_sandboxes(
        tmp_path / "sandbox", reference_dir=reference_dir, limits_enabled=False
    )
    yield handles
    await handles.stop()


@pytest.fixture
def hub_settings(settings: Settings, sandboxes: SandboxHandles) -> Settings:
    return settings.model_copy(
        update={
            "line_api_url": sandboxes.line.url,
            "line_data_url": sandboxes.line.url,
            "line_channel_access_token": SANDBOX_TOKEN,
            "fcm_api_url": sandboxes.fcm.url,
            "fcm_project_id": sandboxes.service_account.project_id,
            "fcm_credentials_file": sandboxes.service_account.path,
            "smtp_host": sandboxes.smtp.host,
            "smtp_port": sandboxes.smtp.port,
            "mail_from": "info@city.example.jp",
            "chunk_size_email": 40,
            "chunk_size_fcm": 100,
            "retry_delay_scale": 0.01,
            "rate_limits_enabled": False,
        }
    )


@pytest.fixture
async def db(hub_settings: Settings) -> AsyncIterator[Database]:
    database = Database.from_settings(hub_settings)
    yield database
    await database.close()


@pytest.fixture
async def queue(hub_settings: Settings) -> AsyncIterator[ArqRedis]:
    assert hub_settings.redis_url
    pool = await create_pool(RedisSettings.from_dsn(hub_settings.redis_url))
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
        "burst": True,
        "handle_signals": False,
        "poll_delay": 0.02,
        "functions": delivery_jobs.FUNCTIONS,
        "cron_jobs": None,
        "on_startup": _startup,
        "on_shutdown": _shutdown,
    }
    options.update(overrides)
    worker = build_worker(settings, **options)
    try:
        await worker.async_run()
    finally:
        with warnings.catch_warnings():
            # arq 0.28 closes its pool with redis-py's deprecated close(); nothing we can fix.
            warnings.simplefilter("ignore", DeprecationWarning)
            await worker.close()


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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # sandbox.line (another area, in progress) still stores request state under str keys;
    # aiohttp warns about it and pytest turns the warning into a 500 inside the sandbox.
    for item in items:
        if "tests/delivery/" in str(item.fspath):
            item.add_marker(
                pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")
            )
