"""worker.py runs this area's jobs and its reconciler cron."""

from __future__ import annotations

from notify.settings import Settings
from worker import build_worker


def test_worker_py_has_the_delivery_jobs_and_cron(settings: Settings) -> None:
    worker = build_worker(settings, burst=True, handle_signals=False)
    assert {"delivery.begin", "delivery.send_batch", "delivery.plan"} <= set(worker.functions)
    assert "delivery.reconcile" in {job.name for job in worker.cron_jobs}
