"""A hub worker process for the delivery benchmarks: worker.py's `build_worker` with the
delivery area's jobs and cron (settings from the environment, like `python worker.py`).

    python -m bench._worker        (HUB_BENCH_MAX_JOBS: concurrent jobs, default 20)
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

from notify.city import load_city
from notify.cli_errors import run_command
from notify.db import Database
from notify.delivery import jobs as delivery_jobs
from notify.settings import Settings
from worker import build_worker, settle_garbage_collector, use_uvloop


async def startup(ctx: dict[str, Any]) -> None:
    ctx["city"] = load_city(ctx["settings"].city_config)
    ctx["db"] = Database.from_settings(ctx["settings"])
    await delivery_jobs.startup(ctx)
    settle_garbage_collector()  # as worker.py's startup does


async def shutdown(ctx: dict[str, Any]) -> None:
    await delivery_jobs.shutdown(ctx)
    await ctx["db"].close()


def main() -> None:
    settings = Settings.from_env(os.environ)
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(process)d %(name)s %(message)s"
    )
    if os.environ.get("HUB_BENCH_DEBUG"):  # per-batch timings from notify.delivery
        logging.getLogger("notify.delivery").setLevel(logging.DEBUG)
    use_uvloop()  # as worker.py does
    worker = build_worker(
        settings,
        functions=delivery_jobs.FUNCTIONS,
        cron_jobs=delivery_jobs.CRON_JOBS,
        on_startup=startup,
        on_shutdown=shutdown,
        max_jobs=int(os.environ.get("HUB_BENCH_MAX_JOBS", "20")),
        # arq's default poll (0.5 s): every poll walks the queued and running job ids with
        # a few Redis round trips each, and a system call is not cheap on this machine.
        poll_delay=float(os.environ.get("HUB_BENCH_POLL_S", "0.5")),
    )
    profile = os.environ.get("HUB_BENCH_PROFILE")  # write cProfile stats here (diagnosis)
    if not profile:
        worker.run()
        return
    import cProfile

    profiler = cProfile.Profile(time.process_time)  # CPU, not wall: other processes share it
    profiler.enable()
    try:
        worker.run()
    finally:
        profiler.disable()
        profiler.dump_stats(f"{profile}.{os.getpid()}")


if __name__ == "__main__":
    # As worker.py: a lost Redis or database (the chaos benchmark restarts Redis) ends the
    # process with one line and exit 69, and the benchmark's supervisor starts another.
    sys.exit(run_command(main))
