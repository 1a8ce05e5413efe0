"""`notify up` keeps its workers running: real child processes, started again when they fail."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest

from notify.supervisor import Supervisor

# Appends its pid to a file at each start; exits with `code` on its first `fail` starts,
# then stays up (or exits 0 when told to).
CHILD = """
import os, sys, time
starts, code, fail = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(starts, "a") as f:
    f.write(f"{os.getpid()}\\n")
if len(open(starts).read().split()) <= fail:
    sys.exit(code)
time.sleep(60)
"""


def _child(starts: Path, code: int, fail: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", CHILD, str(starts), str(code), str(fail)])


def _wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _starts(path: Path) -> list[int]:
    return [int(pid) for pid in path.read_text().split()] if path.exists() else []


def test_a_worker_that_fails_is_started_again_with_a_growing_pause(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="notify.supervisor")
    starts = tmp_path / "starts"
    supervisor = Supervisor(check_every_s=0.05, first_pause_s=0.2)
    supervisor.add("worker-0", partial(_child, starts, 69, 2))  # fails twice, then stays up
    try:
        _wait_for(lambda: len(_starts(starts)) == 3)
        assert supervisor.restarts("worker-0") == 2
        assert supervisor.pid("worker-0") == _starts(starts)[-1]
        pauses = [r.getMessage() for r in caplog.records]
        assert pauses == [
            "worker-0 exited with code 69; starting it again in 0.2 s",
            "worker-0 exited with code 69; starting it again in 0.4 s",
        ]
    finally:
        supervisor.stop(grace_s=5)
    assert len(_starts(starts)) == 3


def test_a_killed_worker_is_started_again(tmp_path: Path) -> None:
    starts = tmp_path / "starts"
    supervisor = Supervisor(check_every_s=0.05, first_pause_s=0.1)
    supervisor.add("worker-0", partial(_child, starts, 0, 0))
    try:
        _wait_for(lambda: len(_starts(starts)) == 1)
        first = supervisor.pid("worker-0")
        subprocess.run(["kill", "-9", str(first)], check=True)  # as the OOM killer would
        _wait_for(lambda: len(_starts(starts)) == 2)
        assert supervisor.pid("worker-0") != first
    finally:
        supervisor.stop(grace_s=5)


def test_a_worker_that_stops_cleanly_stays_stopped(tmp_path: Path) -> None:
    starts = tmp_path / "starts"
    supervisor = Supervisor(check_every_s=0.05, first_pause_s=0.1)
    supervisor.add("worker-0", partial(_child, starts, 0, 1))  # exits 0 at once
    try:
        _wait_for(lambda: len(_starts(starts)) == 1)
        time.sleep(0.5)  # several checks and pauses: nothing starts it again
        assert len(_starts(starts)) == 1 and supervisor.restarts("worker-0") == 0
    finally:
        supervisor.stop(grace_s=5)


def test_stop_ends_every_worker_and_starts_none_again(tmp_path: Path) -> None:
    starts = [tmp_path / "a", tmp_path / "b"]
    supervisor = Supervisor(check_every_s=0.05, first_pause_s=0.1)
    for index, path in enumerate(starts):
        supervisor.add(f"worker-{index}", partial(_child, path, 0, 0))
    _wait_for(lambda: all(len(_starts(p)) == 1 for p in starts))
    supervisor.stop(grace_s=5)
    time.sleep(0.3)
    assert [len(_starts(p)) for p in starts] == [1, 1]
    for path in starts:
        with pytest.raises(ProcessLookupError):  # ended and reaped
            os.kill(_starts(path)[0], 0)


def test_workers_that_fail_together_each_wait_only_their_own_pause(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A Redis restart ends every worker at once: the second must not wait out the first's pause.
    caplog.set_level(logging.WARNING, logger="notify.supervisor")
    supervisor = Supervisor(check_every_s=0.05, first_pause_s=3.0)
    for index in range(2):
        supervisor.add(f"worker-{index}", partial(_child, tmp_path / f"s{index}", 69, 1))
    try:
        _wait_for(lambda: len(caplog.records) == 2, timeout_s=2.5)  # both within one pause
        assert sorted(r.getMessage().split()[0] for r in caplog.records) == [
            "worker-0",
            "worker-1",
        ]
    finally:
        supervisor.stop(grace_s=5)


def test_a_worker_that_cannot_be_started_is_tried_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="notify.supervisor")
    starts = tmp_path / "starts"
    calls = []

    def start() -> subprocess.Popen[bytes]:
        calls.append(1)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return _child(starts, 69, 1)  # fails at its first start only

    supervisor = Supervisor(check_every_s=0.05, first_pause_s=0.1)
    supervisor.add("worker-0", start)
    try:
        _wait_for(lambda: len(_starts(starts)) == 2)
        assert len(calls) == 3 and supervisor.restarts("worker-0") == 1
        assert "could not be started" in caplog.records[1].getMessage()
    finally:
        supervisor.stop(grace_s=5)
