"""The synthetic city: realistic shares, deterministic, streamed, and loadable on both databases."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import re
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import text

from notify.city import CityConfig
from notify.db import Database
from notify.registry.bulkload import copy_chunks_postgres
from notify.registry.email_address import check_email
from notify.registry.line_webhook import USER_ID_PATTERN
from notify.registry.profile import create_resident
from notify.synthetic import (
    RESIDENT_COLUMNS,
    TABLES,
    FirstIds,
    Mix,
    chunk_rows,
    generate_city,
    load_demo_city,
    load_synthetic_city,
    ward_shares,
)
from tests.conftest import count_rows

TODAY = dt.date(2026, 4, 1)


def digest(city: CityConfig, n: int, seed: int, chunk_size: int = 1_000) -> str:
    h = hashlib.sha256()
    for chunk in generate_city(city, n, seed=seed, chunk_size=chunk_size, today=TODAY):
        h.update(repr(chunk.rows()).encode())
    return h.hexdigest()


def test_same_seed_same_city_other_seed_other_city(city: CityConfig) -> None:
    assert digest(city, 3_000, seed=7) == digest(city, 3_000, seed=7)
    assert digest(city, 3_000, seed=7) != digest(city, 3_000, seed=8)


def test_generation_is_streamed_in_chunks(city: CityConfig) -> None:
    chunks = generate_city(city, 2_500, chunk_size=1_000, today=TODAY)
    first = next(chunks)  # a generator: nothing beyond the first chunk exists yet
    assert len(first.residents) == 1_000
    assert [len(c.residents) for c in chunks] == [1_000, 500]


def test_chunks_are_independent_so_workers_can_split_them(city: CityConfig) -> None:
    def rows(worker: int, workers: int) -> set[tuple[Any, ...]]:
        out: set[tuple[Any, ...]] = set()
        for chunk in chunk_rows(city, 5_000, 3, 700, FirstIds(), TODAY, Mix(), worker, workers):
            for table in chunk:
                out.update(table)
        return out

    assert rows(0, 1) == rows(0, 2) | rows(1, 2)
    assert not rows(0, 2) & rows(1, 2)


def test_shares_look_like_a_city(city: CityConfig) -> None:
    n = 20_000
    residents: list[tuple[Any, ...]] = []
    children: list[tuple[Any, ...]] = []
    topics: list[tuple[Any, ...]] = []
    endpoints: list[tuple[Any, ...]] = []
    for chunk in generate_city(city, n, seed=11, chunk_size=5_000, today=TODAY):
        residents += chunk.residents
        children += chunk.children
        topics += chunk.topics
        endpoints += chunk.endpoints
    col = {name: i for i, name in enumerate(RESIDENT_COLUMNS)}

    wards = Counter(r[col["ward_code"]] for r in residents)
    for code, share in ward_shares(city).items():
        assert abs(wards[code] / n - share) < 0.01, code

    primary = Counter(r[col["preferred_channel"]] for r in residents)
    assert abs(primary["line"] / n - 0.70) < 0.02
    assert abs(primary["fcm"] / n - 0.20) < 0.02
    assert abs(primary["email"] / n - 0.10) < 0.02
    per_resident = Counter(e[1] for e in endpoints)
    assert 0.05 < sum(1 for c in per_resident.values() if c > 1) / n < 0.12  # several channels

    households = {c[1] for c in children}
    assert abs(len(households) / n - 0.35) < 0.02
    now_index = TODAY.year * 12 + TODAY.month - 1
    ages_years = [(now_index - c[4]) // 12 for c in children]
    assert min(ages_years) == 0 and max(ages_years) == 18
    assert all(c[4] == c[2] * 12 + c[3] - 1 and 1 <= c[3] <= 12 for c in children)

    languages = Counter(r[col["language"]] for r in residents)
    assert languages["ja"] / n > 0.9
    assert set(languages) == city.language_codes
    quiet = sum(1 for r in residents if r[col["quiet_start_min"]] is not None)
    assert abs(quiet / n - 0.30) < 0.02
    assert {t[1] for t in topics} == city.topic_keys
    childcare = {t[0] for t in topics if t[1] == "childcare"}
    assert len(childcare & households) / len(households) > 0.7

    # Addresses look like the real thing and are unique; ids are unique.
    assert len({r[0] for r in residents}) == n
    assert len({c[0] for c in children}) == len(children)
    assert len({e[0] for e in endpoints}) == len(endpoints)
    assert len({(e[2], e[3]) for e in endpoints}) == len(endpoints)
    assert len({e[7] for e in endpoints}) == len(endpoints)
    for endpoint in endpoints[:2_000]:
        channel, address, token = endpoint[2], endpoint[3], endpoint[7]
        assert len(token) == 16
        if channel == "line":
            assert re.fullmatch(USER_ID_PATTERN, address)
        elif channel == "fcm":
            assert re.fullmatch(r"[A-Za-z0-9_:\-]{20,512}", address) and ":APA91b" in address
        else:
            assert check_email(address).address == address


async def test_load_on_both_databases_then_the_app_keeps_going(
    database: Database, city: CityConfig
) -> None:
    result = await load_synthetic_city(database, city, 3_000, seed=5, chunk_size=1_000)
    assert result["residents"] == 3_000 and result["load_s"] >= 0
    assert await count_rows(database, "residents") == 3_000
    assert await count_rows(database, "children") == result["children"] > 0
    assert await count_rows(database, "resident_topics") == result["topics"] > 0
    assert await count_rows(database, "endpoints") == result["endpoints"] >= 3_000
    async with database.engine.connect() as conn:
        orphans = await conn.execute(
            text(
                "SELECT COUNT(*) FROM endpoints e LEFT JOIN residents r ON r.id = e.resident_id"
                " WHERE r.id IS NULL"
            )
        )
        assert orphans.scalar_one() == 0
    # Sequences continue after the explicit ids: the app can add residents.
    async with database.transaction() as session:
        resident = await create_resident(session)
        assert resident.id == 3_001
    # A second load (same seed) appends without colliding.
    again = await load_synthetic_city(database, city, 1_000, seed=5, chunk_size=1_000)
    assert again["residents"] == 1_000
    assert await count_rows(database, "residents") == 4_001


async def test_postgres_bulk_mode_with_two_processes_restores_the_schema(
    db_url: str, city: CityConfig
) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("COPY and index rebuild are PostgreSQL's")

    async def schema() -> set[tuple[str, str]]:
        db = Database(db_url.replace("postgresql://", "postgresql+asyncpg://"))
        try:
            async with db.engine.connect() as conn:
                rows = await conn.execute(
                    text(
                        "SELECT tablename, indexname FROM pg_indexes WHERE tablename IN"
                        " ('residents', 'children', 'resident_topics', 'endpoints')"
                    )
                )
                cons = await conn.execute(
                    text(
                        "SELECT conrelid::regclass::text, conname FROM pg_constraint WHERE"
                        " conrelid::regclass::text IN"
                        " ('residents', 'children', 'resident_topics', 'endpoints')"
                        " AND convalidated"
                    )
                )
                return {tuple(r) for r in rows} | {tuple(r) for r in cons}
        finally:
            await db.close()

    before = await schema()
    source = functools.partial(chunk_rows, city, 4_000, 9, 500, FirstIds(), TODAY, Mix())
    db = Database(db_url.replace("postgresql://", "postgresql+asyncpg://"))
    timings: dict[str, float] = {}
    try:
        loaded = await copy_chunks_postgres(
            db,
            [(table, columns) for table, columns, _ in TABLES],
            source,
            workers=2,
            rebuild_indexes=True,
            timings=timings,
        )
    finally:
        await db.close()
    assert loaded["residents"] == 4_000
    assert timings["rebuild_s"] > 0 and timings["copy_s"] > 0
    assert await schema() == before
    assert len(before) >= 17  # 14 indexes (incl. PKs and unique constraints) + 3 foreign keys


async def test_demo_city(database: Database, city: CityConfig) -> None:
    result = await load_demo_city(database, city, residents=500)
    assert result["residents"] == 500
    assert await count_rows(database, "residents") == 500
