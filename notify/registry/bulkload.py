"""Bulk loading of registry rows (the synthetic city, and any future import).

PostgreSQL: asyncpg `copy_records_to_table`, one transaction per chunk. With
`rebuild_indexes=True` (large loads only) and every target table empty (a fresh benchmark
database), the secondary indexes, unique and
foreign-key constraints of those tables are dropped first and rebuilt at the end, two at a
time: building an index once from sorted data is several times cheaper than updating it row
by row, and the rows are consistent by construction. Primary keys stay. The definitions are
read from the catalog (`pg_get_indexdef` / `pg_get_constraintdef`), so a migration that adds
an index needs no change here, and the rebuild runs in `finally`: a failed load still leaves
the schema whole (only a killed process could leave them missing: hence large loads only).
If anything refuses to be dropped (another table depends on it), the load
simply runs with everything in place.

SQLite: executemany through SQLAlchemy Core in chunks (types converted as usual).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import asyncpg
from sqlalchemy import insert
from sqlalchemy.engine import make_url

from notify.db import Base, Database

log = logging.getLogger(__name__)

_FOREIGN_KEYS = "-- foreign keys (NOT VALID) --"
_VALIDATE = "-- validate foreign keys --"
TableSpec = tuple[str, Sequence[str]]  # (table name, columns in row order)
Rows = Sequence[Sequence[tuple[Any, ...]]]  # per chunk: one row list per table, same order
ChunkSource = Callable[[int, int], Iterable[Rows]]  # (worker, workers) → that worker's chunks


async def insert_chunks_sqlite(
    db: Database, tables: Sequence[TableSpec], chunks: Iterable[Rows]
) -> dict[str, int]:
    counts = {name: 0 for name, _ in tables}
    for chunk in chunks:
        async with db.engine.begin() as conn:
            for (name, columns), rows in zip(tables, chunk, strict=True):
                if rows:
                    await conn.execute(
                        insert(Base.metadata.tables[name]),
                        [dict(zip(columns, row, strict=True)) for row in rows],
                    )
                counts[name] += len(rows)
    return counts


def asyncpg_dsn(db: Database) -> str:
    return make_url(db.url).set(drivername="postgresql").render_as_string(hide_password=False)


async def copy_chunks_postgres(
    db: Database,
    tables: Sequence[TableSpec],
    source: ChunkSource,
    *,
    workers: int = 1,
    rebuild_indexes: bool = False,
    timings: dict[str, float] | None = None,
) -> dict[str, int]:
    """COPY every chunk of `source`; `timings` (if given) receives seconds per phase.

    With `workers` > 1 each worker process runs `source(worker, workers)` and COPYs its own
    chunks over its own connection: generation, encoding and the server's work then use
    every core. `source` must be picklable (a module-level function or a partial of one).
    """
    timings = {} if timings is None else timings
    clock = time.perf_counter
    dsn = asyncpg_dsn(db)
    names = [name for name, _ in tables]
    conn = await asyncpg.connect(dsn)
    counts = dict.fromkeys(names, 0)
    restore: list[str] = []
    try:
        started = clock()
        restore = await _drop_for_bulk(conn, names) if rebuild_indexes else []
        timings["drop_s"] = clock() - started
        started = clock()
        if workers <= 1:
            results = [await _copy_worker(dsn, tables, source, 0, 1)]
        else:
            loop = asyncio.get_running_loop()
            context = multiprocessing.get_context("spawn")  # never fork a running event loop
            with ProcessPoolExecutor(workers, mp_context=context) as pool:
                results = await asyncio.gather(
                    *(
                        loop.run_in_executor(
                            pool, _copy_worker_sync, dsn, tables, source, i, workers
                        )
                        for i in range(workers)
                    )
                )
        for result in results:
            for name, value in result.items():
                counts[name] += value
        timings["copy_s"] = clock() - started
    finally:
        try:
            started = clock()
            await _rebuild(dsn, restore)
            timings["rebuild_s"] = clock() - started
            for name in names:
                if "id" in Base.metadata.tables[name].c:
                    await conn.execute(
                        f"SELECT setval(pg_get_serial_sequence('{name}', 'id'),"
                        f" (SELECT COALESCE(MAX(id), 0) + 1 FROM {name}), false)"
                    )
            await conn.execute(f"ANALYZE {', '.join(names)}")
        finally:
            await conn.close()
    return counts


def _copy_worker_sync(
    dsn: str, tables: Sequence[TableSpec], source: ChunkSource, worker: int, workers: int
) -> dict[str, int]:
    return asyncio.run(_copy_worker(dsn, tables, source, worker, workers))


async def _copy_worker(
    dsn: str, tables: Sequence[TableSpec], source: ChunkSource, worker: int, workers: int
) -> dict[str, int]:
    counts = {name: 0 for name, _ in tables}
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SET synchronous_commit = off")  # a crash means re-running the load
        for chunk in source(worker, workers):
            async with conn.transaction():
                for (name, columns), rows in zip(tables, chunk, strict=True):
                    if rows:
                        await conn.copy_records_to_table(name, records=rows, columns=columns)
                    counts[name] += len(rows)
    finally:
        await conn.close()
    return counts


async def _drop_for_bulk(conn: asyncpg.Connection, tables: Sequence[str]) -> list[str]:
    """Drop secondary indexes and unique/FK constraints if all tables are empty.

    Returns the statements that put them back (indexes and unique constraints first,
    foreign keys last).
    """
    for name in tables:
        if await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {name})"):
            return []
    constraints = await conn.fetch(
        """
        SELECT conrelid::regclass::text AS tbl, conname, contype::text AS contype,
               pg_get_constraintdef(oid) AS def
        FROM pg_constraint
        WHERE conrelid = ANY($1::regclass[]) AND contype IN ('u', 'f')
        """,
        list(tables),
    )
    indexes = await conn.fetch(
        """
        SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS def
        FROM pg_index i
        WHERE i.indrelid = ANY($1::regclass[]) AND NOT i.indisprimary
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
        """,
        list(tables),
    )
    drop_fks: list[str] = []
    drop_others: list[str] = []
    restore_first: list[str] = []
    restore_last: list[str] = []
    validate: list[str] = []
    for row in constraints:
        is_fk = row["contype"] == "f"
        (drop_fks if is_fk else drop_others).append(
            f'ALTER TABLE {row["tbl"]} DROP CONSTRAINT "{row["conname"]}"'
        )
        add = f'ALTER TABLE {row["tbl"]} ADD CONSTRAINT "{row["conname"]}" {row["def"]}'
        if is_fk:
            # NOT VALID takes its locks for a moment; the VALIDATEs (the scans) then run
            # side by side, which plain ADD CONSTRAINT ... FOREIGN KEY would not allow.
            restore_last.append(f"{add} NOT VALID")
            validate.append(f'ALTER TABLE {row["tbl"]} VALIDATE CONSTRAINT "{row["conname"]}"')
        else:
            restore_first.append(add)
    for row in indexes:
        drop_others.append(f"DROP INDEX {row['name']}")
        restore_first.append(row["def"])
    try:
        async with conn.transaction():
            # Foreign keys first: they may lean on a unique index dropped after them.
            for stmt in [*drop_fks, *drop_others]:
                await conn.execute(stmt)
    except asyncpg.PostgresError as exc:
        log.info("bulk load keeps indexes in place: %s", exc)
        return []
    return [*restore_first, _FOREIGN_KEYS, *restore_last, _VALIDATE, *validate]


async def _rebuild(dsn: str, statements: Sequence[str]) -> None:
    """Indexes two at a time (one per core), then the foreign keys, validated side by side."""
    if not statements:
        return
    statements = list(statements)
    fk_at, validate_at = statements.index(_FOREIGN_KEYS), statements.index(_VALIDATE)
    await _run_two_at_a_time(dsn, statements[:fk_at])
    await _run_two_at_a_time(dsn, statements[fk_at + 1 : validate_at], workers=1)
    await _run_two_at_a_time(dsn, statements[validate_at + 1 :])


async def _run_two_at_a_time(dsn: str, statements: Sequence[str], workers: int = 2) -> None:
    work: asyncio.Queue[str] = asyncio.Queue()
    for stmt in statements:
        work.put_nowait(stmt)

    async def worker() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("SET maintenance_work_mem = '256MB'")
            while not work.empty():
                await conn.execute(work.get_nowait())
        finally:
            await conn.close()

    await asyncio.gather(*(worker() for _ in range(workers)))
