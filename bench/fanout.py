"""`python -m bench fanout --recipients N --json`: one broadcast to a synthetic city.

A synthetic city of N residents (70 % LINE / 20 % app / 10 % email, one usable endpoint
each, so N recipients) in a PostgreSQL database of its own (kept between runs; `--fresh`
reloads it); the bench's own Redis; the sandbox in its own process (limits off); the hub's
workers as `--workers` processes. The clock runs from enqueueing `delivery.begin` to the
broadcast leaving 'sending' (snapshot and planning included). Then the sandboxes'
per-recipient counters are compared with the snapshot (`lost`, `duplicates`), and bare
clients measure what the same sandbox takes without the hub (`bare_ratio` = the time bare
clients need for the same messages, channel after channel, over the hub's wall time).

`--real-limits`: the sandbox enforces LINE's and FCM's limits and the hub's limiter is on;
`limit_ratio` = wall time over the time those limits imply (`--limit-scale` scales both the
sandbox's and the hub's limits, so they can bind on a machine slower than the limits).

The last stdout line is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import time
from typing import Any

import aiohttp
from arq import create_pool
from sqlalchemy.engine import make_url

from bench import _bare
from bench._city import (
    DEFAULT_URL,
    Children,
    RssSampler,
    broadcast_state,
    channel_throughput,
    exactly_once,
    make_broadcast,
    prepare_city,
    reset_sandbox,
    sandbox_counts,
    wait_for_end,
)
from notify.queue_redis import queue_redis_settings

LINE_PER_S, FCM_PER_MIN = 200.0, 600_000.0
CHANNELS = ("line", "fcm", "email")


def channel_list(value: str) -> list[str]:
    """`--channels line,fcm`: known channels, at least one (argparse reports the error)."""
    channels = [c.strip() for c in value.split(",") if c.strip()]
    unknown = sorted(set(channels) - set(CHANNELS))
    if unknown or not channels:
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated list of {', '.join(CHANNELS)}; got {value!r}"
        )
    return channels


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench fanout", description=__doc__)
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2, help="hub worker processes")
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--fresh", action="store_true", help="reload the synthetic city")
    parser.add_argument("--real-limits", action="store_true")
    parser.add_argument("--limit-scale", type=float, default=1.0)
    parser.add_argument("--smtp-per-s", type=float, default=5000.0, help="hub SMTP limit")
    parser.add_argument("--smtp-connections", type=int, default=None, help="per email batch")
    parser.add_argument(
        "--channels",
        type=channel_list,
        default=list(CHANNELS),
        help="the broadcast's channels (diagnosis: one channel's cost alone; implies --no-bare)",
    )
    parser.add_argument("--no-bare", action="store_true", help="skip the bare-client runs")
    parser.add_argument(
        "--bare-short",
        action="store_true",
        help="bare clients send a short built-in message, not the hub's own request bodies",
    )
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    return parser.parse_args(argv)


async def set_sandbox_limits(info: dict[str, Any], scale: float) -> None:
    async with aiohttp.ClientSession() as session:
        for url, limits in (
            (info["line"]["url"], {"enabled": True, "multicast": [LINE_PER_S * scale, 1.0]}),
            (info["fcm"]["url"], {"enabled": True, "project_per_min": FCM_PER_MIN * scale}),
        ):
            async with session.post(url + "/_sandbox/limits", json=limits) as response:
                response.raise_for_status()


async def wait_for_workers(redis_url: str, timeout_s: float = 60.0) -> None:
    pool = await create_pool(queue_redis_settings(redis_url))
    try:
        deadline = time.monotonic() + timeout_s
        while not await pool.exists("arq:queue:health-check"):
            if time.monotonic() > deadline:
                raise RuntimeError("the workers did not start")
            await asyncio.sleep(0.2)
    finally:
        await pool.aclose()


async def run(args: argparse.Namespace, log: Any) -> dict[str, Any]:
    log(f"preparing a city of {args.recipients} residents …")
    load_s = await prepare_city(args.database_url, args.recipients, fresh=args.fresh)
    children = Children()
    try:
        children.start_redis()
        children.start_sandbox(limits=args.real_limits)
        info = children.sandbox_info
        extra = {"HUB_RATE_LIMITS_ENABLED": "true" if args.real_limits else "false"}
        if args.smtp_connections:
            extra["HUB_SMTP_CONNECTIONS"] = str(args.smtp_connections)
        if args.real_limits:
            await set_sandbox_limits(info, args.limit_scale)
            extra["HUB_LINE_MULTICAST_PER_S"] = str(LINE_PER_S * args.limit_scale)
            extra["HUB_FCM_PER_MIN"] = str(FCM_PER_MIN * args.limit_scale)
            extra["HUB_SMTP_PER_S"] = str(args.smtp_per_s)
        env = children.worker_env(args.database_url, **extra)
        for _ in range(args.workers):
            children.start_worker(env)
        await wait_for_workers(children.redis_url)
        await asyncio.sleep(1.0)  # let every worker reach its poll loop

        channels: list[str] = args.channels
        broadcast_id = await make_broadcast(args.database_url, channels=channels)
        rss = RssSampler()
        pool = await create_pool(queue_redis_settings(children.redis_url))
        sandbox = children.sandboxes
        redis = [children.redis] if children.redis else []
        database = make_url(args.database_url).database or ""
        rss.mark_start([*children.workers, *sandbox, *redis], database)
        log("sending …")
        # For the first send's delay: `sent_at` is the workers' clock, on this machine too.
        started_at = dt.datetime.now(dt.UTC)
        started = time.perf_counter()
        await pool.enqueue_job("delivery.begin", broadcast_id)

        def sample() -> None:
            rss.sample(children.workers)
            rss.sample([*sandbox, *redis], rss=False)
            rss.sample_postgres(database)

        ended = await wait_for_end(args.database_url, broadcast_id, sample, args.timeout)
        wall_s = ended - started
        sample()
        await pool.aclose()
        status, _ = await broadcast_state(args.database_url, broadcast_id)
        log(f"done in {wall_s:.1f} s ({status}); checking the sandboxes …")
        check = await exactly_once(args.database_url, broadcast_id, await sandbox_counts(info))
        throughput = await channel_throughput(args.database_url, broadcast_id, started_at)
        for process in children.workers:
            process.terminate()

        result: dict[str, Any] = {
            "recipients": sum(c["recipients"] for c in check["per_channel"].values()),
            "residents": args.recipients,
            "workers": args.workers,
            "wall_s": round(wall_s, 2),
            "delivered": check["delivered"],
            "lost": check["lost"],
            "duplicates": check["duplicates"],
            "status": status,
            "worker_peak_rss_mb": round(rss.peak_mb, 1),
            "worker_cpu_s": rss.cpu(children.workers),
            "sandbox_cpu_s": rss.cpu(sandbox),
            "postgres_cpu_s": rss.postgres_cpu,
            "redis_cpu_s": rss.cpu(redis),
            "sandbox_cpu_per_provider_s": {
                name: rss.cpu([process])
                for name, process in zip(("line", "fcm", "smtp"), sandbox, strict=False)
            },
            "hub_per_s": round(check["delivered"] / wall_s, 1),
            # How long the first residents waited (snapshot included): the first recorded send.
            "first_sent_s": min((c["first_sent_s"] for c in throughput.values()), default=None),
            "channels": {
                channel: {**numbers, **throughput.get(channel, {})}
                for channel, numbers in check["per_channel"].items()
            },
            "city_load_s": round(load_s, 1),
        }
        result.update(cpu_floor(result))
        if args.real_limits:
            result.update(limit_ratios(result, args.limit_scale, wall_s))
        if not args.no_bare and set(channels) == set(CHANNELS):
            log("bare clients against the same sandbox …")
            bodies = _bare.HubBodies() if args.bare_short else await _bare.HubBodies.read(info)
            await reset_sandbox(info)
            if args.real_limits:
                await set_sandbox_limits(info, 1000.0)  # the bare run measures speed, not limits
            result.update(await bare_ratio(info, result, wall_s, bodies))
        return result
    finally:
        children.stop()


def cpu_floor(result: dict[str, Any]) -> dict[str, Any]:
    """The CPU the whole send took (hub, fake providers, Redis, PostgreSQL) spread over every
    core: no wall time can be shorter on this machine, whatever the limits allow. The fakes'
    share alone is the floor a hub that cost nothing would meet here."""
    cores = len(os.sched_getaffinity(0))
    parts = ("worker_cpu_s", "sandbox_cpu_s", "redis_cpu_s", "postgres_cpu_s")
    total_s = round(sum(result[part] for part in parts), 1)
    return {
        "cores": cores,
        "total_cpu_s": total_s,
        "cpu_floor_s": round(total_s / cores, 2),
        "fakes_floor_s": round(result["sandbox_cpu_s"] / cores, 2),
    }


def limit_ratios(result: dict[str, Any], scale: float, wall_s: float) -> dict[str, Any]:
    channels = result["channels"]
    bounds = {
        "line": channels["line"]["recipients"] / 500 / (LINE_PER_S * scale),
        "fcm": channels["fcm"]["recipients"] / (FCM_PER_MIN * scale / 60),
    }
    bound = max(bounds.values())
    per_channel = {
        name: round(channels[name].get("span_s", 0.0) / b, 2) for name, b in bounds.items() if b
    }
    return {
        "limit_scale": scale,
        "limit_bound_s": round(bound, 2),
        # None: no LINE or FCM recipient (`--channels email`), so no limit bounds the send.
        "limit_ratio": round(wall_s / bound, 2) if bound else None,
        "limit_ratio_per_channel": per_channel,
    }


async def bare_ratio(
    info: dict[str, Any], result: dict[str, Any], wall_s: float, bodies: _bare.HubBodies
) -> dict[str, Any]:
    channels = result["channels"]
    line_n, fcm_n, mail_n = (channels[c]["recipients"] for c in ("line", "fcm", "email"))
    line_url = info["line"]["url"]
    bare = {
        "line": await _bare.line(line_url, max(1, min(line_n // 500, 300)), bodies=bodies),
        "fcm": await _bare.fcm(info["fcm"], max(1, min(fcm_n, 30_000)), bodies=bodies),
        "email": await _bare.email(info["smtp"], max(1, min(mail_n, 10_000)), bodies=bodies),
    }
    bare_time = sum(
        n / bare[c]["per_s"] for c, n in (("line", line_n), ("fcm", fcm_n), ("email", mail_n))
    )
    for channel, numbers in bare.items():
        result["channels"][channel]["bare_per_s"] = numbers["per_s"]
    return {
        "bare_time_s": round(bare_time, 2),
        "bare_per_s": round(result["recipients"] / bare_time, 1),
        "bare_ratio": round(bare_time / wall_s, 3),
        "bare_bodies": bodies.source,
    }


def main(argv: list[str] | None = None) -> None:
    import sys

    args = parse_args(sys.argv[1:] if argv is None else argv)

    def log(message: str) -> None:
        if not args.json:
            print(message, flush=True)

    result = asyncio.run(run(args, log))
    print(json.dumps(result, ensure_ascii=False))
