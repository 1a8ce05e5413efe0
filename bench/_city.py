"""Shared pieces of the delivery benchmarks (fanout, chaos): a synthetic city in PostgreSQL,
the bench's own Redis, the sandbox and the hub's workers as child processes, and the
"exactly once" check against the sandboxes' per-recipient counters.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import psutil
from sqlalchemy.engine import make_url

from notify.city import load_city
from notify.db import Database
from notify.embedded_redis import free_port, redis_server_binary
from notify.migrate import upgrade
from notify.settings import REPO_ROOT, Settings
from notify.supervisor import stop_processes
from notify.synthetic import Mix, load_synthetic_city

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/bench_delivery"
CITY_CONFIG = REPO_ROOT / "config" / "kawasaki.yaml"
# Every resident has exactly one usable endpoint (70 % LINE / 20 % app / 10 % email) and no
# quiet hours, so "recipients" is exactly the number of residents and nothing is held.
BENCH_MIX = Mix(
    second_channel=0.0,
    quiet_hours=0.0,
    line_blocked=0.0,
    fcm_pruned=0.0,
    email_pending=0.0,
    email_withdrawn=0.0,
)
REDIS_ARGS = ("--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--loglevel", "warning")
CONTENT = {
    "ja": {
        "title": "【川崎市】大雨に関するお知らせ",
        "body": "{{ resident.ward }}にお住まいの皆さまへ。大雨に備えてください。",
        "url": "https://www.city.kawasaki.jp/",
    },
    "en": {"title": "Heavy rain", "body": "Residents of {{ resident.ward }}: be prepared."},
}


def pg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _admin(url: str) -> tuple[str, str]:
    """The database `url` names, and a DSN of its server's `postgres` database; refuses a name
    that is not a plain identifier (it goes into DROP DATABASE)."""
    parsed = make_url(url)
    name = parsed.database
    if not name or not name.replace("_", "").isalnum():
        raise SystemExit(f"refusing to drop and re-create database {name!r}")
    admin = parsed.set(drivername="postgresql", database="postgres")
    return name, admin.render_as_string(hide_password=False)


async def recreate_database(url: str) -> None:
    """Drop (if there) and create the database `url` names, empty."""
    name, admin = _admin(url)
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def prepare_city(url: str, residents: int, *, fresh: bool, seed: int = 7) -> float:
    """A database holding exactly `residents` synthetic residents; returns the load time
    (0 when an earlier run's city was reused). Delivery state is always cleared."""
    name, admin = _admin(url)
    conn = await asyncpg.connect(admin)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
    finally:
        await conn.close()
    have = -1
    if exists and not fresh:
        conn = await asyncpg.connect(pg_dsn(url))
        try:
            have = await conn.fetchval("SELECT COUNT(*) FROM residents")
        except asyncpg.UndefinedTableError:
            have = -1
        finally:
            await conn.close()
    load_s = 0.0
    if have != residents:
        await recreate_database(url)
    db = Database(Settings(database_url=url).effective_database_url)
    try:
        await upgrade(db)
    finally:
        await db.close()
    if have != residents:
        started = time.perf_counter()
        await load_synthetic_city(url, load_city(CITY_CONFIG), residents, seed=seed, mix=BENCH_MIX)
        load_s = time.perf_counter() - started
    conn = await asyncpg.connect(pg_dsn(url))
    try:
        await conn.execute(
            "TRUNCATE deliveries, delivery_batches, delivery_runs, broadcasts, audit_log CASCADE"
        )
        await conn.execute("UPDATE endpoints SET status = 'active' WHERE status <> 'active'")
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    return load_s


async def make_broadcast(
    url: str, *, priority: str = "normal", channels: Sequence[str] = ("line", "fcm", "email")
) -> int:
    conn = await asyncpg.connect(pg_dsn(url))
    try:
        return int(
            await conn.fetchval(
                """INSERT INTO broadcasts (title, status, priority, topic, content, segment,
                   channels, channel_policy, send_at, version, created_at, updated_at,
                   started_at)
                   VALUES ($1, 'sending', $2, NULL, $3, '{}', $4, 'all', now(), 1, now(),
                   now(), now()) RETURNING id""",
                "ベンチマーク配信",
                priority,
                json.dumps(CONTENT, ensure_ascii=False),
                json.dumps(list(channels)),
            )
        )
    finally:
        await conn.close()


# --- child processes ---------------------------------------------------------------------


@dataclass(slots=True)
class Children:
    redis: subprocess.Popen[bytes] | None = None
    redis_port: int = 0
    sandboxes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    sandbox_info: dict[str, Any] = field(default_factory=dict)
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    work_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="bench-")))

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def start_redis(self) -> None:
        """The bench's own Redis; `restart_redis` brings it back empty (no persistence)."""
        if not self.redis_port:
            self.redis_port = free_port()
        self.redis = subprocess.Popen(
            [redis_server_binary(), "--port", str(self.redis_port), *REDIS_ARGS],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_port(self.redis_port)

    def restart_redis(self) -> None:
        assert self.redis is not None
        self.redis.kill()
        self.redis.wait()
        self.start_redis()

    def start_sandbox(self, *, limits: bool) -> None:
        """One sandbox process per provider (`python -m sandbox --only …`): SMTP is a chatty
        protocol, and behind 100 concurrent FCM requests in the same event loop every SMTP
        reply would wait its turn, which no real mail server would make it do."""
        info: dict[str, Any] = {}
        for only in ("line", "fcm", "smtp"):
            command = [sys.executable, "-m", "sandbox", "--only", only]
            command += ["--work-dir", str(self.work_dir / only)]
            process = subprocess.Popen(
                command + ([] if limits else ["--no-limits"]),
                stdout=subprocess.PIPE,
                cwd=REPO_ROOT,
            )
            self.sandboxes.append(process)
            assert process.stdout is not None
            line = process.stdout.readline()
            if not line:
                raise RuntimeError(f"the {only} sandbox did not start")
            info[only] = json.loads(line)[only]
        self.sandbox_info = info

    def worker_env(self, database_url: str, **extra: str) -> dict[str, str]:
        info = self.sandbox_info
        env = dict(os.environ)
        env.update(
            {
                "DATABASE_URL": database_url,
                "REDIS_URL": self.redis_url,
                "HUB_LINE_API_URL": info["line"]["url"],
                "HUB_LINE_DATA_URL": info["line"]["url"],
                "HUB_LINE_CHANNEL_ACCESS_TOKEN": "sandbox-line-channel-access-token",
                "HUB_FCM_API_URL": info["fcm"]["url"],
                "HUB_FCM_PROJECT_ID": info["fcm"]["project_id"],
                "HUB_FCM_CREDENTIALS_FILE": info["fcm"]["credentials_file"],
                "HUB_SMTP_HOST": info["smtp"]["host"],
                "HUB_SMTP_PORT": str(info["smtp"]["port"]),
                "HUB_MAIL_FROM": "info@city.example.jp",
                "HUB_SECRET_KEY": "bench-secret-key-0123456789",
                "HUB_PUBLIC_URL": "https://c.example.jp",
                "HUB_CITY_CONFIG": str(CITY_CONFIG),
                "HUB_LOG_LEVEL": os.environ.get("HUB_BENCH_LOG_LEVEL", "WARNING"),  # diagnosis
            }
        )
        env.update(extra)
        return env

    def start_worker(self, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-m", "bench._worker"], env=dict(env), cwd=REPO_ROOT
        )
        self.workers.append(process)
        return process

    def stop(self) -> None:
        # Workers first: a worker that is still closing needs its Redis.
        for group in (self.workers, [*self.sandboxes, self.redis]):
            stop_processes(group)


def _wait_port(port: int, timeout_s: float = 10.0) -> None:
    import socket

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


class RssSampler:
    """Peak resident memory of the worker processes (each on its own), and CPU seconds of
    every sampled process (the last value seen: a killed process keeps its last sample).

    `mark_start` takes each process's CPU so far as its zero: the CPU figures then count the
    send, not the imports and start-up before the clock started."""

    def __init__(self) -> None:
        self.peak_mb = 0.0
        self.cpu_s: dict[int, float] = {}
        self.pg_cpu_s: dict[int, float] = {}
        self.base_s: dict[int, float] = {}

    def mark_start(self, processes: list[subprocess.Popen[bytes]], database: str) -> None:
        for process in processes:
            self.sample([process], rss=False)
        self.sample_postgres(database)
        self.base_s = {**self.cpu_s, **self.pg_cpu_s}

    def sample(self, processes: list[subprocess.Popen[bytes]], *, rss: bool = True) -> None:
        for process in processes:
            try:
                info = psutil.Process(process.pid)
                times = info.cpu_times()
                if rss:
                    self.peak_mb = max(self.peak_mb, info.memory_info().rss / 2**20)
            except psutil.Error:
                continue
            self.cpu_s[process.pid] = times.user + times.system

    def cpu(self, processes: list[subprocess.Popen[bytes]]) -> float:
        used = (self.cpu_s.get(p.pid, 0.0) - self.base_s.get(p.pid, 0.0) for p in processes)
        return round(sum(used), 1)

    def sample_postgres(self, database: str) -> None:
        """CPU of the PostgreSQL backends serving `database` (by their process title)."""
        for proc in psutil.process_iter(["name", "cmdline"]):
            try:
                title = " ".join(proc.info["cmdline"] or [])
                if proc.info["name"] == "postgres" and f" {database} " in f" {title} ":
                    times = proc.cpu_times()
                    self.pg_cpu_s[proc.pid] = times.user + times.system
            except psutil.Error:
                continue

    @property
    def postgres_cpu(self) -> float:
        return round(sum(s - self.base_s.get(pid, 0.0) for pid, s in self.pg_cpu_s.items()), 1)


# --- checks --------------------------------------------------------------------------------


async def sandbox_counts(info: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """Per channel: recipient → how many messages the sandbox accepted for it."""
    urls = {
        "line": info["line"]["url"],
        "fcm": info["fcm"]["url"],
        "email": info["smtp"]["control_url"],
    }
    out: dict[str, dict[str, int]] = {}
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for channel, base in urls.items():
            async with session.get(
                base.rstrip("/") + "/_sandbox/counters", params={"name": "delivered"}
            ) as response:
                data = await response.json()
            out[channel] = data["counters"].get("delivered", {}).get("by_recipient", {})
    return out


async def reset_sandbox(info: Mapping[str, Any]) -> None:
    async with aiohttp.ClientSession() as session:
        for base in (info["line"]["url"], info["fcm"]["url"], info["smtp"]["control_url"]):
            async with session.post(base.rstrip("/") + "/_sandbox/reset") as response:
                await response.read()


async def exactly_once(
    url: str, broadcast_id: int, counts: Mapping[str, Mapping[str, int]]
) -> dict[str, Any]:
    """Compare the snapshot (who should get it) with what the sandboxes received. Of the
    recipients that received nothing (`lost`), `lost_recorded_failed` are those the hub
    recorded as failed for good (every try met a fault, or a permanent error): accounted
    for, but not delivered, so still counted in `lost`."""
    conn = await asyncpg.connect(pg_dsn(url))
    result: dict[str, Any] = {"lost": 0, "duplicates": 0, "delivered": 0, "per_channel": {}}
    try:
        for channel in ("line", "fcm", "email"):
            expected = 0
            lost = duplicates = recorded_failed = 0
            seen = counts.get(channel, {})
            async with conn.transaction():
                async for address, status in conn.cursor(
                    """SELECT e.address, d.status
                         FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id
                        WHERE d.broadcast_id = $1 AND d.channel = $2""",
                    broadcast_id,
                    channel,
                    prefetch=20_000,
                ):
                    expected += 1
                    n = seen.get(address, 0)
                    lost += n == 0
                    recorded_failed += n == 0 and status == "failed"
                    duplicates += max(n - 1, 0)
            strangers = len(seen) - (expected - lost)
            result["per_channel"][channel] = {
                "recipients": expected,
                "delivered": expected - lost,
                "lost": lost,
                "lost_recorded_failed": recorded_failed,
                "duplicates": duplicates,
                "unexpected": strangers,
            }
            result["lost"] += lost
            result["duplicates"] += duplicates
            result["delivered"] += expected - lost
    finally:
        await conn.close()
    return result


async def channel_throughput(
    url: str, broadcast_id: int, started: dt.datetime | None = None
) -> dict[str, dict[str, float]]:
    """Per channel: sent, span (first to last recorded send), rate; with `started` (when the
    clock started), `first_sent_s`: how long the first residents waited."""
    conn = await asyncpg.connect(pg_dsn(url))
    try:
        rows = await conn.fetch(
            """SELECT channel, COUNT(*) AS n, MIN(sent_at) AS first, MAX(sent_at) AS last
               FROM deliveries WHERE broadcast_id = $1 AND status = 'sent' GROUP BY channel""",
            broadcast_id,
        )
    finally:
        await conn.close()
    out: dict[str, dict[str, float]] = {}
    for row in rows:
        span = max((row["last"] - row["first"]).total_seconds(), 1e-3)
        out[row["channel"]] = {
            "sent": row["n"],
            "span_s": round(span, 2),
            "per_s": round(row["n"] / span, 1),
        }
        if started is not None:
            out[row["channel"]]["first_sent_s"] = round((row["first"] - started).total_seconds(), 2)
    return out


async def broadcast_state(
    url: str, broadcast_id: int, conn: asyncpg.Connection | None = None
) -> tuple[str, int]:
    own = conn is None
    if conn is None:
        conn = await asyncpg.connect(pg_dsn(url))
    try:
        status = await conn.fetchval("SELECT status FROM broadcasts WHERE id = $1", broadcast_id)
        runs = await conn.fetchval(
            "SELECT COUNT(*) FROM delivery_runs WHERE broadcast_id = $1", broadcast_id
        )
    finally:
        if own:
            await conn.close()
    return str(status), int(runs)


async def wait_for_end(url: str, broadcast_id: int, sample: Any, timeout_s: float) -> float:
    """Poll until the broadcast leaves 'sending'; returns when (perf_counter). One connection
    for the whole wait: a new PostgreSQL backend twice a second is CPU the hub would not get."""
    deadline = time.perf_counter() + timeout_s
    conn = await asyncpg.connect(pg_dsn(url))
    try:
        while time.perf_counter() < deadline:
            status, _ = await broadcast_state(url, broadcast_id, conn)
            if status not in ("sending", "paused"):
                return time.perf_counter()
            sample()
            await asyncio.sleep(0.5)
    finally:
        await conn.close()
    raise TimeoutError(f"broadcast {broadcast_id} still sending after {timeout_s} s")
