"""worker.py runs this area's jobs and its reconciler cron."""

from __future__ import annotations

from notify.queue_redis import CONNECT_TIMEOUT_S
from notify.settings import Settings
from worker import build_worker


def test_worker_py_has_the_delivery_jobs_and_cron(settings: Settings) -> None:
    worker = build_worker(settings, burst=True, handle_signals=False)
    assert {"delivery.begin", "delivery.send_batch", "delivery.plan"} <= set(worker.functions)
    assert "delivery.reconcile" in {job.name for job in worker.cron_jobs}


def test_the_worker_waits_longer_than_arqs_second_for_a_redis_connection(
    settings: Settings,
) -> None:
    # arq's 1 s default failed heartbeats in CI when the test's event loop was busy for a second.
    worker = build_worker(settings, burst=True, handle_signals=False)
    assert worker.redis_settings is not None
    assert worker.redis_settings.conn_timeout == CONNECT_TIMEOUT_S > 1
