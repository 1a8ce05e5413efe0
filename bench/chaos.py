"""`python -m bench chaos --recipients 100000 --kills 5 --json`: crash the hub while it sends.

The fanout set-up (synthetic city, the bench's own Redis, sandbox process, worker processes)
plus, while the broadcast is sending:

- `--kills` times, `kill -9` of a random worker process (the bench then starts a new one, as
  a process supervisor would). Each kill comes at a random point of the send's progress
  (between 5 % and 60 % of its batches done, the kills in order, at least 1.5 s apart), not
  at a random time: a small send on a fast machine can end before any fixed moment;
- `--fault-share` (10 %) of provider requests fail with 5xx (LINE multicasts, FCM sends, SMTP
  RCPTs), and a few LINE multicasts fail *after* LINE accepted them (the retry must get 409);
- once, the bench's Redis is killed and started again empty: the queue, the rate-limit
  state and every lock are gone, and the database is the only record of what is left.

Then the sandboxes' per-recipient counters are compared with the snapshot: `lost` must be 0;
`duplicates` per channel: LINE 0, FCM and email at most one batch per kill (`dup_bound`).
The last stdout line is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from typing import Any

import aiohttp
import asyncpg
from arq import create_pool

from bench._city import (
    DEFAULT_URL,
    Children,
    RssSampler,
    broadcast_state,
    exactly_once,
    make_broadcast,
    pg_dsn,
    prepare_city,
    sandbox_counts,
)
from bench.fanout import wait_for_workers
from notify.queue_redis import queue_redis_settings

BATCH = {"line": 500, "fcm": 500, "email": 200}
KILL_GAP_S = 1.5  # a replaced worker gets this long to start before the next kill
POLL_S = 0.1


async def batches_done(conn: asyncpg.Connection, broadcast_id: int) -> float:
    """The share of the broadcast's batches that are done; 0 until the snapshot is complete
    (its parts add batches while the first ones are sent, so a share before then says little)."""
    done, total = await conn.fetchrow(
        """SELECT COUNT(*) FILTER (WHERE b.status IN ('done', 'cancelled')), COUNT(*)
             FROM delivery_batches b JOIN delivery_runs r ON r.broadcast_id = b.broadcast_id
            WHERE b.broadcast_id = $1 AND r.snapshot_done""",
        broadcast_id,
    )
    return done / total if total else 0.0


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench chaos", description=__doc__)
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--fault-share", type=float, default=0.10)
    parser.add_argument("--line-accepted-faults", type=int, default=5)
    parser.add_argument("--retry-scale", type=float, default=0.2, help="HUB_RETRY_DELAY_SCALE")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--fresh", action="store_true")
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--json", action="store_true")
    return parser.parse_args(argv)


async def inject_faults(info: dict[str, Any], share: float, accepted: int, seed: int) -> None:
    async with aiohttp.ClientSession() as session:
        for base, config in (
            (info["line"]["url"], {"paths": ["/v2/bot/message/multicast"]}),
            (info["fcm"]["url"], {"paths": ["/v1/projects/"]}),
            (info["smtp"]["control_url"], {}),  # SMTP: RCPT answers 4xx
        ):
            body = {"error_share": share, "error_status": 503, "seed": seed, **config}
            async with session.post(base.rstrip("/") + "/_sandbox/faults", json=body) as r:
                r.raise_for_status()
        if accepted:
            fault = {"kind": "error", "status": 500, "after_accept": True, "count": accepted}
            async with session.post(info["line"]["url"] + "/_sandbox/faults/next", json=fault) as r:
                r.raise_for_status()


async def run(args: argparse.Namespace, log: Any) -> dict[str, Any]:
    rng = random.Random(args.seed)
    await prepare_city(args.database_url, args.recipients, fresh=args.fresh)
    children = Children()
    events: list[str] = []
    try:
        children.start_redis()
        children.start_sandbox(limits=False)
        info = children.sandbox_info
        await inject_faults(
            info, args.fault_share, args.line_accepted_faults, rng.randrange(1 << 30)
        )
        env = children.worker_env(
            args.database_url,
            HUB_RATE_LIMITS_ENABLED="false",
            HUB_RETRY_DELAY_SCALE=str(args.retry_scale),
        )
        for _ in range(args.workers):
            children.start_worker(env)
        await wait_for_workers(children.redis_url)
        await asyncio.sleep(1.0)

        broadcast_id = await make_broadcast(args.database_url)
        pool = await create_pool(queue_redis_settings(children.redis_url))
        await pool.enqueue_job("delivery.begin", broadcast_id)
        await pool.aclose()
        started = time.perf_counter()
        rss = RssSampler()
        kills_done, restarts, redis_restarted = 0, 0, False
        wipe_after = rng.randint(1, max(args.kills, 1))  # the wipe comes after this many kills
        kill_at = sorted(rng.uniform(0.05, 0.60) for _ in range(args.kills))  # share of batches
        last_kill = started - KILL_GAP_S
        deadline = started + args.timeout
        conn = await asyncpg.connect(pg_dsn(args.database_url))
        try:
            while True:
                now = time.perf_counter()
                status, _ = await broadcast_state(args.database_url, broadcast_id, conn)
                if status not in ("sending", "paused"):
                    break
                if now > deadline:
                    raise TimeoutError("the broadcast did not finish")
                rss.sample(children.workers)
                for i, process in enumerate(children.workers):
                    if process.poll() is not None:  # the supervisor brings dead workers back
                        replacement = children.start_worker(env)
                        children.workers.remove(replacement)
                        children.workers[i] = replacement
                        restarts += 1
                due = kills_done < args.kills and now - last_kill >= KILL_GAP_S
                if due and await batches_done(conn, broadcast_id) >= kill_at[kills_done]:
                    victim = rng.choice(children.workers)
                    victim.kill()
                    victim.wait()
                    kills_done += 1
                    last_kill = now
                    events.append(f"{now - started:.1f}s kill -9 worker {victim.pid}")
                    if kills_done == wipe_after and not redis_restarted:
                        await asyncio.sleep(rng.uniform(0.2, 1.5))
                        children.restart_redis()
                        redis_restarted = True
                        at = time.perf_counter() - started
                        events.append(f"{at:.1f}s redis restarted empty")
                await asyncio.sleep(POLL_S)
        finally:
            await conn.close()
        wall_s = time.perf_counter() - started
        log(f"finished in {wall_s:.1f} s ({status}); checking the sandboxes …")
        check = await exactly_once(args.database_url, broadcast_id, await sandbox_counts(info))
        per_channel = {
            name: {
                "recipients": numbers["recipients"],
                "lost": numbers["lost"],
                "lost_recorded_failed": numbers["lost_recorded_failed"],
                "duplicates": numbers["duplicates"],
                "dup_bound": 0 if name == "line" else kills_done * BATCH[name],
            }
            for name, numbers in check["per_channel"].items()
        }
        return {
            "recipients": sum(c["recipients"] for c in per_channel.values()),
            "kills": kills_done,
            "redis_restarts": int(redis_restarted),
            "worker_restarts": restarts,
            "fault_share": args.fault_share,
            "wall_s": round(wall_s, 1),
            "status": status,
            "lost": check["lost"],
            "duplicates": {name: c["duplicates"] for name, c in per_channel.items()},
            "within_bounds": all(c["duplicates"] <= c["dup_bound"] for c in per_channel.values())
            and check["lost"] == 0,
            "channels": per_channel,
            "events": events,
            "worker_peak_rss_mb": round(rss.peak_mb, 1),
        }
    finally:
        children.stop()


def main(argv: list[str] | None = None) -> None:
    import sys

    args = parse_args(sys.argv[1:] if argv is None else argv)

    def log(message: str) -> None:
        if not args.json:
            print(message, flush=True)

    print(json.dumps(asyncio.run(run(args, log)), ensure_ascii=False))
