"""The README's first command: `python -m notify up --demo` on a machine with nothing configured
starts a private Redis, the provider sandbox, SQLite, demo data, the worker and the server."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from notify.embedded_redis import free_port
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
        # Ctrl-C reaches the whole group, and `make demo` forwards a SIGTERM of its own.
        os.killpg(proc.pid, signal.SIGINT)
        time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=30)[0].decode()
    assert proc.returncode == 0, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
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
