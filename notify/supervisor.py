"""Keep `python -m notify up`'s worker processes running.

A worker ends itself (exit 69, one line in its log) when it loses Redis or the database: a
Redis failover or restart ends every worker at once. A crash, or a kill by the kernel's OOM
killer, ends one. In production a service manager brings them back (systemd
`Restart=always`); `notify up` is its own service manager, so a worker that fails is started
again here, after a pause that doubles while it keeps failing (1 s up to 30 s) and resets
once it has stayed up for a minute. Delivery state lives in the database, so a new worker
takes up where the old one stopped. A worker that stops cleanly (exit 0) was asked to
(SIGTERM, or Ctrl-C to the whole process group) and stays stopped.
"""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

log = logging.getLogger("notify.supervisor")

FIRST_PAUSE_S = 1.0
LONGEST_PAUSE_S = 30.0
STEADY_AFTER_S = 60.0  # up this long: the next exit starts again after the first pause


def stop_process(process: subprocess.Popen[bytes], grace_s: float = 10.0) -> None:
    """Ask a child process to stop (SIGTERM); kill it if it is still there after `grace_s`."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def stop_processes(
    processes: Iterable[subprocess.Popen[bytes] | None], grace_s: float = 10.0
) -> None:
    """`stop_process` for several at once: every running one is signalled before any is
    waited for, so they stop side by side and the grace period is not paid once per process."""
    running = [p for p in processes if p is not None and p.poll() is None]
    for process in running:
        process.terminate()
    for process in running:
        stop_process(process, grace_s)


@dataclass
class _Child:
    name: str
    start: Callable[[], subprocess.Popen[bytes]]
    process: subprocess.Popen[bytes] | None
    started_at: float
    pause_s: float
    restarts: int = 0
    restart_at: float | None = None  # exited: when it starts again
    ended: bool = False  # stopped on purpose: not started again


class Supervisor:
    def __init__(self, *, check_every_s: float = 0.5, first_pause_s: float = FIRST_PAUSE_S):
        self._children: list[_Child] = []
        self._check_every_s = check_every_s
        self._first_pause_s = first_pause_s
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, name: str, start: Callable[[], subprocess.Popen[bytes]]) -> None:
        child = _Child(name, start, start(), time.monotonic(), pause_s=self._first_pause_s)
        self._children.append(child)
        if self._thread is None:
            self._thread = threading.Thread(target=self._watch, name="supervisor", daemon=True)
            self._thread.start()

    def restarts(self, name: str) -> int:
        return next(c.restarts for c in self._children if c.name == name)

    def pid(self, name: str) -> int | None:
        process = next(c.process for c in self._children if c.name == name)
        return process.pid if process else None

    def _watch(self) -> None:
        # One pass over every child per tick, never blocking on one: workers that fail
        # together (a Redis restart) each come back after their own pause.
        while not self._stopping.wait(self._check_every_s):
            now = time.monotonic()
            for child in list(self._children):
                if child.ended:
                    continue
                if child.restart_at is not None:
                    if now >= child.restart_at:
                        self._start_again(child)
                    continue
                code = child.process.poll() if child.process else None
                if code == 0:  # asked to stop (SIGTERM, Ctrl-C to the whole group): it stays so
                    log.info("%s stopped", child.name)
                    child.ended = True
                elif code is not None:
                    self._schedule(child, f"exited with code {code}", now)

    def _schedule(self, child: _Child, why: str, now: float) -> None:
        if now - child.started_at >= STEADY_AFTER_S:
            child.pause_s = self._first_pause_s
        log.warning("%s %s; starting it again in %.1f s", child.name, why, child.pause_s)
        child.restart_at = now + child.pause_s
        child.pause_s = min(child.pause_s * 2, LONGEST_PAUSE_S)

    def _start_again(self, child: _Child) -> None:
        child.restart_at, child.started_at = None, time.monotonic()
        try:
            child.process = child.start()
        except Exception as exc:  # e.g. its log file cannot be opened: try again later
            child.process = None
            self._schedule(child, f"could not be started ({exc!r})", time.monotonic())
            return
        child.restarts += 1

    def stop(self, *, grace_s: float = 10.0) -> None:
        """No more restarts; every child is asked to stop (SIGTERM), killed after `grace_s`."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()  # after this no child is started again
        stop_processes((c.process for c in self._children), grace_s)
