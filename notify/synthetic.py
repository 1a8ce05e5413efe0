"""A synthetic city for demos and benchmarks: N residents, streamed, deterministic per seed.

Shape (see `Mix`): ward sizes proportional to the city's ward populations; about 35 % of
households with 1-3 children aged 0-18; primary channel about 70 % LINE / 20 % app / 10 %
email, and some residents on a second channel; mostly Japanese, some of every other city
language; topics (childcare more likely with children); quiet hours for about 30 %; sign-ups
spread over three years with growth towards today (follower growth has a curve).

`generate_city` yields `SyntheticChunk`s of row tuples, never the whole city.
`load_synthetic_city(db_or_url, city, n, seed=1)` loads it (notify/registry/bulkload.py):
PostgreSQL with asyncpg's COPY (`copy_records_to_table`) in chunks, SQLite with executemany
in chunks. Other areas' benchmarks call it: keep its signature stable. Row generation
itself lives in notify/registry/synthetic_rows.py.
"""

from __future__ import annotations

import datetime as dt
import functools
import time
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import func, select

from notify.city import CityConfig
from notify.db import Database
from notify.models import Child, Endpoint, Resident
from notify.registry.bulkload import copy_chunks_postgres, insert_chunks_sqlite
from notify.registry.synthetic_rows import (
    CHILD_COLUMNS,
    DEFAULT_CHUNK,
    DEFAULT_MIX,
    ENDPOINT_COLUMNS,
    FROM_ONE,
    RESIDENT_COLUMNS,
    TABLES,
    TOPIC_COLUMNS,
    FirstIds,
    Mix,
    RowGenerator,
    SyntheticChunk,
)

PARALLEL_FROM = 200_000


def generate_city(
    city: CityConfig,
    n: int,
    *,
    seed: int = 1,
    chunk_size: int = DEFAULT_CHUNK,
    first: FirstIds = FROM_ONE,
    today: dt.date | None = None,
    mix: Mix = DEFAULT_MIX,
) -> Iterator[SyntheticChunk]:
    """Yield the city chunk by chunk; the same arguments give the same rows."""
    yield from _chunks(city, n, seed, chunk_size, first, today or dt.date.today(), mix, 0, 1)


def _chunks(
    city: CityConfig,
    n: int,
    seed: int,
    chunk_size: int,
    first: FirstIds,
    today: dt.date,
    mix: Mix,
    worker: int,
    workers: int,
) -> Iterator[SyntheticChunk]:
    """Every `workers`-th chunk from the `worker`-th: chunks are independent of each other."""
    gen = RowGenerator(city, seed, first, today, mix)
    for start in range(worker * chunk_size, n, chunk_size * workers):
        yield gen.chunk(start, min(chunk_size, n - start))


def chunk_rows(
    city: CityConfig,
    n: int,
    seed: int,
    chunk_size: int,
    first: FirstIds,
    today: dt.date,
    mix: Mix,
    worker: int,
    workers: int,
) -> Iterator[tuple[list[tuple[Any, ...]], ...]]:
    """The bulk loader's picklable chunk source (see notify/registry/bulkload.py)."""
    for chunk in _chunks(city, n, seed, chunk_size, first, today, mix, worker, workers):
        yield chunk.rows()


async def load_synthetic_city(
    db_or_url: Database | str,
    city: CityConfig,
    n: int,
    *,
    seed: int = 1,
    chunk_size: int = DEFAULT_CHUNK,
    mix: Mix = DEFAULT_MIX,
    workers: int | None = None,
) -> dict[str, Any]:
    """Add n synthetic residents; returns counts and `load_s`. A URL is migrated first.

    PostgreSQL loads of `PARALLEL_FROM` residents or more use two processes (generation and
    COPY side by side, one per core) unless `workers` says otherwise, and, into empty
    tables, build the secondary indexes once at the end instead of row by row.
    """
    from notify.migrate import upgrade
    from notify.settings import Settings

    own = isinstance(db_or_url, str)
    if isinstance(db_or_url, str):
        db = Database(Settings(database_url=db_or_url).effective_database_url)
    else:
        db = db_or_url
    try:
        if own:
            await upgrade(db)
        started = time.perf_counter()
        first = await _first_ids(db)
        source = functools.partial(
            chunk_rows, city, n, seed, chunk_size, first, dt.date.today(), mix
        )
        tables = [(table, columns) for table, columns, _ in TABLES]
        timings: dict[str, float] = {}
        if db.is_sqlite:
            loaded = await insert_chunks_sqlite(db, tables, source(0, 1))
        else:
            if workers is None:
                workers = 2 if n >= PARALLEL_FROM else 1
            loaded = await copy_chunks_postgres(
                db,
                tables,
                source,
                workers=workers,
                rebuild_indexes=n >= PARALLEL_FROM,
                timings=timings,
            )
        counts = {name: loaded[table] for table, _, name in TABLES}
        return {
            "residents": counts["residents"],
            "children": counts["children"],
            "topics": counts["topics"],
            "endpoints": counts["endpoints"],
            "seed": seed,
            "load_s": round(time.perf_counter() - started, 2),
            **{name: round(value, 2) for name, value in timings.items()},
        }
    finally:
        if own:
            await db.close()


async def load_demo_city(
    db: Database, city: CityConfig, residents: int = 10_000, seed: int = 20_260_401
) -> dict[str, Any]:
    """The demo launcher's call: a small deterministic city."""
    return await load_synthetic_city(db, city, residents, seed=seed)


async def _first_ids(db: Database) -> FirstIds:
    async with db.sessionmaker() as session:
        maxima = [
            await session.scalar(select(func.coalesce(func.max(col), 0)))
            for col in (Resident.id, Child.id, Endpoint.id)
        ]
    return FirstIds(*(int(m or 0) + 1 for m in maxima))


def ward_shares(city: CityConfig) -> dict[str, float]:
    total = sum(w.population for w in city.wards)
    return {w.code: w.population / total for w in city.wards}


__all__: Sequence[str] = (
    "CHILD_COLUMNS",
    "ENDPOINT_COLUMNS",
    "RESIDENT_COLUMNS",
    "TABLES",
    "TOPIC_COLUMNS",
    "FirstIds",
    "Mix",
    "SyntheticChunk",
    "chunk_rows",
    "generate_city",
    "load_demo_city",
    "load_synthetic_city",
    "ward_shares",
)
