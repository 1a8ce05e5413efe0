"""`python -m bench registry --residents 1000000 --json`: load a synthetic city, time it.

By default a scratch PostgreSQL database `bench_registry` on 127.0.0.1 is dropped, created and
migrated (not timed); then `notify.synthetic.load_synthetic_city` loads the residents (timed:
`load_s`, target < 60 s for 1,000,000). A `--database-url` of your own is used as it is,
unless `--fresh` asks to drop and re-create it. The last stdout line is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import time
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from bench._city import pg_dsn, recreate_database
from notify.city import load_city
from notify.db import Database
from notify.migrate import upgrade
from notify.settings import REPO_ROOT, Settings
from notify.synthetic import load_synthetic_city, ward_shares

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/bench_registry"


async def shape(url: str) -> dict[str, Any]:
    """What was loaded, measured in the database (not trusted from the generator)."""
    conn = await asyncpg.connect(pg_dsn(url))
    try:
        wards = dict(await conn.fetch("SELECT ward_code, COUNT(*) FROM residents GROUP BY 1"))
        channels = dict(
            await conn.fetch("SELECT preferred_channel, COUNT(*) FROM residents GROUP BY 1")
        )
        multi = await conn.fetchval(
            "SELECT COUNT(*) FROM (SELECT resident_id FROM endpoints GROUP BY 1"
            " HAVING COUNT(*) > 1) AS several"
        )
        with_children = await conn.fetchval("SELECT COUNT(DISTINCT resident_id) FROM children")
        residents = await conn.fetchval("SELECT COUNT(*) FROM residents")
        size = await conn.fetchval("SELECT pg_database_size(current_database())")
    finally:
        await conn.close()
    return {
        "wards": wards,
        "channels": channels,
        "multi": multi,
        "with_children": with_children,
        "residents": residents,
        "db_mb": round(size / 1e6),
    }


def _cpu_s() -> float:
    """CPU seconds of this process and its finished children (the loader's workers)."""
    own, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


async def run(args: argparse.Namespace) -> dict[str, Any]:
    url = args.database_url or DEFAULT_URL
    load_before = os.getloadavg()[0]
    if args.fresh or args.database_url is None:
        await recreate_database(url)
    db = Database(Settings(database_url=url).effective_database_url)
    started = time.perf_counter()
    await upgrade(db)
    migrate_s = time.perf_counter() - started
    city = load_city(Path(args.city))
    cpu_before = _cpu_s()
    try:
        result = await load_synthetic_city(
            db,
            city,
            args.residents,
            seed=args.seed,
            chunk_size=args.chunk_size,
            workers=args.workers,
        )
    finally:
        await db.close()
    client_cpu_s = _cpu_s() - cpu_before
    load_after = os.getloadavg()[0]
    measured = await shape(url)
    n = max(measured["residents"], 1)
    expected = ward_shares(city)
    worst_ward = max(
        (abs(measured["wards"].get(code, 0) / n - share) for code, share in expected.items()),
        default=0.0,
    )
    return {
        "bench": "registry",
        "residents": measured["residents"],
        "children": result["children"],
        "topics": result["topics"],
        "endpoints": result["endpoints"],
        "load_s": result["load_s"],
        "copy_s": result.get("copy_s"),
        "rebuild_s": result.get("rebuild_s"),
        "residents_per_s": round(measured["residents"] / max(result["load_s"], 1e-9)),
        "migrate_s": round(migrate_s, 2),
        "workers": args.workers or "auto",
        # Primary channel shares (plus: residents with a second channel).
        "share_line": round(measured["channels"].get("line", 0) / n, 3),
        "share_app": round(measured["channels"].get("fcm", 0) / n, 3),
        "share_email": round(measured["channels"].get("email", 0) / n, 3),
        "share_several_channels": round(measured["multi"] / n, 3),
        "share_with_children": round(measured["with_children"] / n, 3),
        "ward_share_max_error": round(worst_ward, 4),
        "db_mb": measured["db_mb"],
        # Other work on the machine slows the load down: say how busy it was.
        "client_cpu_s": round(client_cpu_s, 1),
        "loadavg_1m": [round(load_before, 2), round(load_after, 2)],
        "cpus": os.cpu_count(),
        "seed": args.seed,
        "database": make_url(url).render_as_string(hide_password=True),
    }


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench registry", description=__doc__)
    parser.add_argument("--residents", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--chunk-size", type=int, default=25_000)
    parser.add_argument("--workers", type=int, default=None, help="loader processes (auto)")
    parser.add_argument("--database-url", default=None, help=f"default: {DEFAULT_URL} (fresh)")
    parser.add_argument("--fresh", action="store_true", help="drop and re-create the database")
    parser.add_argument("--city", default=str(REPO_ROOT / "config" / "kawasaki.yaml"))
    parser.add_argument("--json", action="store_true", help="only the JSON line")
    args = parser.parse_args(argv)
    if args.database_url and not args.database_url.startswith(("postgresql", "postgres:")):
        raise SystemExit("the registry bench measures PostgreSQL COPY: give a postgresql:// URL")
    result = asyncio.run(run(args))
    if not args.json:
        print(
            f"loaded {result['residents']:,} residents in {result['load_s']} s "
            f"({result['residents_per_s']:,}/s) into {result['database']}"
        )
    print(json.dumps(result, ensure_ascii=False), flush=True)
