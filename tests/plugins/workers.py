"""worker.py's arq worker in burst mode, for tests that drain the queue and then look."""

from __future__ import annotations

import warnings
from typing import Any

from notify.settings import Settings
from worker import build_worker


async def run_burst_worker(settings: Settings, **overrides: Any) -> None:
    """Run worker.py's worker (every area's jobs, no signal handlers, no cron) until the queue,
    deferred jobs too, is empty. `overrides` go to `build_worker` on top of those (e.g. a
    `poll_delay`, or one area's `functions` and start-up hooks). Built inside the running
    event loop, as arq needs."""
    options: dict[str, Any] = {
        "burst": True,
        "handle_signals": False,
        "poll_delay": 0.05,
        "cron_jobs": None,
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
