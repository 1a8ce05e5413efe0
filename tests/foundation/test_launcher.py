"""The README's first command: `python -m notify up --demo` on a machine with nothing configured
starts a private Redis, the provider sandbox, SQLite, demo data, the worker and the server."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from notify.embedded_redis import EmbeddedRedis, PortTakenError, free_port
from notify.settings import REPO_ROOT


@pytest.mark.slow
def test_demo_hub_starts_from_nothing_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    env["HUB_DATA_DIR"] = str(tmp_path / "data")
    proc = subprocess.Popen(
        [sys.executable, "-m", "notify", "up", "--demo", "--residents", "300", "--port", str(port)],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        health = None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    health = json.loads(r.read())
                    break
            except OSError:
                time.sleep(0.5)
        assert health == {"status": "ok", "database": "ok", "redis": "ok", "city": "川崎市"}
        assert (tmp_path / "data" / "hub.db").exists()  # SQLite under the data dir
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/mode/public", timeout=5) as r:
            assert json.loads(r.read())["mode"] == "normal"
        # The demo's two broadcasts went through the workflow and the worker sent them.
        sent = _wait_for_demo_sends(tmp_path / "data" / "hub.db", deadline=time.monotonic() + 90)
        assert len(sent) == 2 and all(n > 0 for n in sent.values()), sent
        # The demo's phones and mail readers open some of them through the hub's endpoints.
        opens = _wait_for_opens(tmp_path / "data" / "hub.db", deadline=time.monotonic() + 30)
        assert set(opens) == {"fcm", "email"} and all(opens.values()), opens
    finally:
        # `timeout make demo` signals the whole group, and make forwards a SIGTERM of its own
        # (Ctrl-C likewise, with SIGINT).
        os.killpg(proc.pid, signal.SIGTERM)
        time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=30)[0].decode()
    assert proc.returncode == 0, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    # The worker stopped while its Redis was still there (the signal reached both at once).
    worker_log = (tmp_path / "data" / "worker-0.log").read_text()
    assert "shutdown on SIG" in worker_log
    assert "error:" not in worker_log and "Traceback" not in worker_log, worker_log[-2000:]
    assert f"http://127.0.0.1:{port}/" in output  # the banner prints the URL
    assert "demo-password" in output
    # Every child (Redis, sandbox, worker) went away with the hub.
    leftovers = subprocess.run(
        ["pgrep", "-f", str(tmp_path)], capture_output=True, text=True, check=False
    ).stdout.split()
    assert leftovers == []


def _wait_for_demo_sends(database: Path, *, deadline: float) -> dict[str, int]:
    query = (
        "SELECT b.title, COUNT(d.broadcast_id) FROM broadcasts b LEFT JOIN deliveries d"
        " ON d.broadcast_id = b.id AND d.status = 'sent' GROUP BY b.id, b.title"
    )
    sent: dict[str, int] = {}
    while time.monotonic() < deadline:
        with sqlite3.connect(database, timeout=10) as conn:
            sent = dict(conn.execute(query).fetchall())
        if len(sent) == 2 and all(sent.values()):
            break
        time.sleep(1)
    return sent


def _wait_for_opens(database: Path, *, deadline: float) -> dict[str, int]:
    query = "SELECT channel, COUNT(*) FROM stats_opens GROUP BY channel"
    opens: dict[str, int] = {}
    while time.monotonic() < deadline:
        with sqlite3.connect(database, timeout=10) as conn:
            opens = dict(conn.execute(query).fetchall())
        if len(opens) == 2:
            break
        time.sleep(1)
    return opens


def test_the_private_redis_outlives_a_signal_to_the_whole_group(tmp_path: Path) -> None:
    """`timeout` and Ctrl-C signal every process of the group at once; the private Redis
    must still be there while the workers stop, and go when its owner stops it."""
    owner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, sys, time\n"
            "from pathlib import Path\n"
            "from notify.embedded_redis import EmbeddedRedis\n"
            # Before the print: the test signals the group as soon as it reads the line.
            "signal.signal(signal.SIGTERM, lambda *_: None)  # the owner waits: stops it later\n"
            "redis = EmbeddedRedis(Path(sys.argv[1]))\n"
            "print(redis.start(), redis.process.pid, flush=True)\n"
            "sys.stdin.readline()\n"
            "redis.stop()\n",
            str(tmp_path / "redis"),
        ],
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    assert owner.stdout is not None and owner.stdin is not None
    url, pid = owner.stdout.readline().decode().split()
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    try:
        os.killpg(owner.pid, signal.SIGTERM)
        time.sleep(0.5)
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            assert sock.recv(16).startswith(b"+PONG")
        owner.communicate(b"\n", timeout=30)  # the owner stops it
        assert owner.returncode == 0
        # The process, not the port: with tests running side by side, another server may
        # bind the freed port at once and answer a connection there.
        assert not _running(int(pid))
    finally:
        if _running(int(pid)):  # a failed run leaves no Redis behind
            os.kill(int(pid), signal.SIGKILL)


def _running(pid: int) -> bool:
    """True while `pid` runs; a zombie that nobody has reaped yet counts as gone."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_the_private_redis_picks_another_port_when_its_own_was_taken(tmp_path: Path) -> None:
    redis = EmbeddedRedis(tmp_path / "redis")
    taken = redis.port
    with socket.socket() as squatter:  # another server binds the port between pick and start
        squatter.bind(("127.0.0.1", taken))
        squatter.listen()
        try:
            url = redis.start()
            assert redis.port != taken and url.endswith(f":{redis.port}/0")
        finally:
            redis.stop()


def test_a_private_redis_on_a_port_given_and_taken_says_so(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        redis = EmbeddedRedis(tmp_path / "redis", port=port)
        with pytest.raises(PortTakenError, match=f"port {port} is taken"):
            redis.start()
