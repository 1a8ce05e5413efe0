"""Segment speed on PostgreSQL: count a realistic segment, fetch the first recipient chunk.

    python -m bench segments --residents 1000000 --json
        [--database-url postgresql://postgres@127.0.0.1:5432/test] [--db-name bench_segments]

Loads a synthetic city (notify.synthetic, COPY) into its own scratch database when the
residents there are not exactly `--residents`, then times, on warm caches, the median of
`--repeat` runs of
- `count_ms`: COUNT(*) of "a child aged 3y0m–5y11m, in two wards (川崎区, 中原区), language ja";
- `first_chunk_ms`: the first 500 resident ids of that segment in id order (how the delivery
  engine pages through it).
Target: count under 200 ms at 1,000,000 residents. The last stdout line is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from notify.city import load_city
from notify.db import Database, utcnow
from notify.migrate import upgrade
from notify.models import Resident
from notify.settings import REPO_ROOT, Settings
from notify.synthetic import load_synthetic_city
from segments.compile import segment_residents

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
CHUNK = 500
SEGMENT: dict[str, Any] = {
    "type": "all",
    "rules": [
        {"type": "child_age", "min": {"years": 3}, "max": {"years": 5, "months": 11}},
        {"type": "wards", "codes": ["141313", "141330"]},
        {"type": "languages", "codes": ["ja"]},
    ],
}


def scratch_url(url: str, name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise SystemExit(f"refusing to manage database {name!r}")
    return make_url(url).set(database=name).render_as_string(hide_password=False)


async def ensure_city(admin_url: str, url: str, name: str, residents: int) -> float | None:
    """The scratch database with exactly `residents`; returns the load time, None if reused."""
    plain = make_url(admin_url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(plain)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists:
            db = await asyncpg.connect(
                make_url(plain).set(database=name).render_as_string(hide_password=False)
            )
            try:
                have = await db.fetchval("SELECT COUNT(*) FROM residents")
            except asyncpg.UndefinedTableError:
                have = -1
            finally:
                await db.close()
            if have == residents:
                await migrate(url)  # a city loaded by an older schema gets the new indexes
                return None
            await conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    city = load_city(REPO_ROOT / "config" / "kawasaki.yaml")
    started = time.perf_counter()
    await load_synthetic_city(url, city, residents)
    db = Database(Settings(database_url=url).effective_database_url)
    try:
        async with db.engine.connect() as c:
            await c.execution_options(isolation_level="AUTOCOMMIT")
            await c.execute(text("VACUUM ANALYZE"))
    finally:
        await db.close()
    return time.perf_counter() - started


async def migrate(url: str) -> None:
    db = Database(Settings(database_url=url).effective_database_url)
    try:
        await upgrade(db)
    finally:
        await db.close()


async def timed(run: Callable[[], Awaitable[Any]], repeat: int) -> tuple[float, Any]:
    await run()  # warm the caches and the plan
    times, value = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        value = await run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), value


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    url = scratch_url(args.database_url, args.db_name)
    load_s = await ensure_city(args.database_url, url, args.db_name, args.residents)
    city = load_city(REPO_ROOT / "config" / "kawasaki.yaml")
    query = segment_residents(SEGMENT, send_date=utcnow(), city=city)
    count_query = select(func.count()).select_from(query.subquery())
    chunk_query = query.order_by(Resident.id).limit(CHUNK)
    db = Database(Settings(database_url=url).effective_database_url)
    try:
        async with db.engine.connect() as conn:
            total = await conn.scalar(select(func.count()).select_from(Resident))

            async def count() -> int:
                return int(await conn.scalar(count_query) or 0)

            async def first_chunk() -> list[int]:
                return list((await conn.scalars(chunk_query)).all())

            count_ms, found = await timed(count, args.repeat)
            chunk_ms, chunk = await timed(first_chunk, args.repeat)
            plan = None
            if args.explain:
                compiled = count_query.compile(
                    conn.sync_engine, compile_kwargs={"literal_binds": True}
                )
                rows = await conn.execute(text(f"EXPLAIN (ANALYZE, BUFFERS) {compiled}"))
                plan = "\n".join(r[0] for r in rows)
    finally:
        await db.close()
    result: dict[str, Any] = {
        "residents": int(total or 0),
        "count": found,
        "count_ms": round(count_ms, 1),
        "first_chunk_ms": round(chunk_ms, 1),
        "first_chunk_size": len(chunk),
        "repeat": args.repeat,
        "segment": "child 3y0m-5y11m, wards 141313+141330, language ja",
    }
    if load_s is not None:
        result["load_s"] = round(load_s, 1)
    if plan:
        result["plan"] = plan
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench segments")
    parser.add_argument("--residents", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=DEFAULT_URL, help="server (and admin database)")
    parser.add_argument("--db-name", default="bench_segments", help="scratch database to use")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--explain", action="store_true", help="add EXPLAIN ANALYZE of the count")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args(argv)
    result = asyncio.run(measure(args))
    if not args.json:
        print(f"{result['residents']} residents: {result['count']} match")
        print(f"count {result['count_ms']} ms, first {CHUNK} ids {result['first_chunk_ms']} ms")
        if "plan" in result:
            print(result["plan"])
    print(json.dumps({k: v for k, v in result.items() if k != "plan"}, ensure_ascii=False))


if __name__ == "__main__":
    main()
