"""The delivery benchmarks themselves, at a small size: each runs as `python -m bench …` on a
clean checkout and its JSON line says what the issue asks (nothing lost, nothing doubled).
Their speed is not judged here; the million-scale runs are measured by hand."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from notify.settings import REPO_ROOT
from tests.conftest import migrated_pg_database, require_postgres

RECIPIENTS = 3000


@pytest.fixture(scope="module")
def bench_database_url() -> Iterator[str]:
    require_postgres()
    # The benchmark reloads its city into it; the database is dropped afterwards.
    with migrated_pg_database(f"hub_test_bench_{os.getpid()}") as url:
        yield url


def _bench(*args: str, quiet: bool = True) -> dict[str, Any]:
    """The benchmark's JSON line; `quiet`: nothing it ran printed a traceback (chaos cannot
    promise that: a worker losing Redis mid-send may log the error it retries)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    done = subprocess.run(
        [sys.executable, "-m", "bench", *args, "--json"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert not quiet or "Traceback" not in done.stderr, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.slow
def test_fanout_with_the_limits_on_delivers_each_recipient_once(bench_database_url: str) -> None:
    result = _bench(
        "fanout", "--recipients", str(RECIPIENTS), "--database-url", bench_database_url,
        "--real-limits", "--limit-scale", "0.05",
    )  # fmt: skip
    assert result["status"] == "completed"
    assert (result["delivered"], result["lost"], result["duplicates"]) == (RECIPIENTS, 0, 0)
    assert set(result["channels"]) == {"line", "fcm", "email"}
    for channel, numbers in result["channels"].items():
        assert numbers["sent"] == numbers["recipients"] > 0, channel
    assert result["limit_ratio"] > 0 and result["bare_ratio"] > 0
    assert result["cpu_floor_s"] > result["fakes_floor_s"] >= 0


@pytest.mark.slow
def test_chaos_loses_nothing_through_a_kill_and_a_redis_restart(bench_database_url: str) -> None:
    result = _bench(
        "chaos", "--recipients", str(RECIPIENTS), "--kills", "1", "--database-url",
        bench_database_url, "--retry-scale", "0.05", quiet=False,
    )  # fmt: skip
    assert result["status"] == "completed"
    assert (result["lost"], result["kills"], result["redis_restarts"]) == (0, 1, 1)
    assert result["within_bounds"] is True
    assert result["duplicates"]["line"] == 0
