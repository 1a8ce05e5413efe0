"""A synthetic city for demos and benchmarks: N residents, streamed, deterministic per seed.

Shape (see `Mix`): ward sizes proportional to the city's ward populations; about 35 % of
households with 1-3 children aged 0-18; primary channel about 70 % LINE / 20 % app / 10 %
email, and some residents on a second channel; mostly Japanese, some of every other city
language; topics (childcare more likely with children); quiet hours for about 30 %; sign-ups
spread over three years with growth towards today (follower growth has a curve).

`generate_city` yields `SyntheticChunk`s of row tuples, never the whole city.
`load_synthetic_city(db_or_url, city, n, seed=1)` loads it (notify/registry/bulkload.py):
PostgreSQL with asyncpg's COPY (`copy_records_to_table`) in chunks, SQLite with executemany
in chunks. Other areas' benchmarks call it: keep its
signature stable.
"""

from __future__ import annotations

import binascii
import bisect
import datetime as dt
import functools
import itertools
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from notify.city import CityConfig
from notify.db import Database
from notify.models import Child, Endpoint, Resident
from notify.registry.bulkload import copy_chunks_postgres, insert_chunks_sqlite

RESIDENT_COLUMNS = (
    "id",
    "public_id",
    "ward_code",
    "language",
    "quiet_start_min",
    "quiet_end_min",
    "preferred_channel",
    "status",
    "created_at",
    "updated_at",
)
CHILD_COLUMNS = ("id", "resident_id", "birth_year", "birth_month", "birth_month_index")
TOPIC_COLUMNS = ("resident_id", "topic")
ENDPOINT_COLUMNS = (
    "id",
    "resident_id",
    "channel",
    "address",
    "platform",
    "consent",
    "status",
    "token",
    "consent_at",
    "withdrawn_at",
    "created_at",
    "updated_at",
)
TABLES = (  # (table, columns, count key)
    ("residents", RESIDENT_COLUMNS, "residents"),
    ("children", CHILD_COLUMNS, "children"),
    ("resident_topics", TOPIC_COLUMNS, "topics"),
    ("endpoints", ENDPOINT_COLUMNS, "endpoints"),
)
DEFAULT_CHUNK = 25_000
MAX_CHILDREN = 3
MAX_ENDPOINTS = 2
PARALLEL_FROM = 200_000
_NAMES = ("taro", "hanako", "yuki", "haruto", "sakura", "ren", "aoi", "sota", "mei", "kenji")
_DOMAINS = ("example.jp", "example.co.jp", "example.ne.jp", "example.com")


@dataclass(frozen=True, slots=True)
class Mix:
    """The shares the generator draws from (defaults: a Japanese designated city)."""

    households_with_children: float = 0.35
    children_counts: tuple[float, float, float] = (0.45, 0.40, 0.15)  # 1, 2, 3 children
    primary_channel: tuple[float, float, float] = (0.70, 0.20, 0.10)  # line, fcm, email
    second_channel: float = 0.08
    quiet_hours: float = 0.30
    japanese: float = 0.93
    ios_share: float = 0.35
    line_blocked: float = 0.05
    fcm_pruned: float = 0.03
    email_pending: float = 0.04
    email_withdrawn: float = 0.04
    years_of_signups: int = 3
    topics: dict[str, float] = field(
        default_factory=lambda: {
            "disaster": 0.85,
            "health": 0.40,
            "events": 0.35,
            "garbage": 0.45,
            "tax": 0.20,
        }
    )
    childcare_with_children: float = 0.80
    childcare_without: float = 0.05
    other_topic: float = 0.30


@dataclass(slots=True)
class SyntheticChunk:
    residents: list[tuple[Any, ...]]
    children: list[tuple[Any, ...]]
    topics: list[tuple[Any, ...]]
    endpoints: list[tuple[Any, ...]]

    def rows(self) -> tuple[list[tuple[Any, ...]], ...]:
        return (self.residents, self.children, self.topics, self.endpoints)


@dataclass(frozen=True, slots=True)
class FirstIds:
    resident: int = 1
    child: int = 1
    endpoint: int = 1


def generate_city(
    city: CityConfig,
    n: int,
    *,
    seed: int = 1,
    chunk_size: int = DEFAULT_CHUNK,
    first: FirstIds = FirstIds(),
    today: dt.date | None = None,
    mix: Mix = Mix(),
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
    gen = _Generator(city, seed, first, today, mix)
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


class _Generator:
    def __init__(
        self, city: CityConfig, seed: int, first: FirstIds, today: dt.date, mix: Mix
    ) -> None:
        self.seed, self.first, self.mix = seed, first, mix
        self.wards = [w.code for w in city.wards]
        self.ward_cum = list(itertools.accumulate(w.population for w in city.wards))
        langs = [lang.code for lang in city.languages]
        main = "ja" if "ja" in langs else langs[0]
        others = [code for code in langs if code != main]
        weights = [1.0 / (i + 1) for i in range(len(others))]
        scale = (1 - mix.japanese) / sum(weights) if others else 0.0
        self.languages = [main, *others]
        self.language_cum = list(
            itertools.accumulate([mix.japanese if others else 1.0] + [w * scale for w in weights])
        )
        self.topics = [
            (t.key, mix.topics.get(t.key, mix.other_topic))
            for t in city.topics
            if t.key != "childcare"
        ]
        self.has_childcare = "childcare" in city.topic_keys
        quiet = city.default_quiet_hours
        default = (
            (quiet.start.hour * 60 + quiet.start.minute, quiet.end.hour * 60 + quiet.end.minute)
            if quiet
            else (22 * 60, 7 * 60)
        )
        self.quiet_choices = [default, default, default, (21 * 60, 7 * 60), (23 * 60, 6 * 60)]
        self.child_id = self.endpoint_id = 0
        self.kids_cum = list(itertools.accumulate(mix.children_counts))
        self.month_now = today.year * 12 + today.month - 1
        self.now = dt.datetime.combine(today, dt.time(9), tzinfo=dt.UTC)
        self.span_s = mix.years_of_signups * 365 * 86400

    def chunk(self, start: int, count: int) -> SyntheticChunk:
        mix = self.mix
        first_rid = self.first.resident + start
        # Id ranges reserved per chunk (at most 3 children and 2 endpoints a resident) make
        # chunks independent, so several processes can generate and load them at once.
        self.child_id = self.first.child + start * MAX_CHILDREN
        self.endpoint_id = self.first.endpoint + start * MAX_ENDPOINTS
        # Seeded by (seed, first resident id): reproducible, and a second load into the same
        # database (other ids) draws other addresses instead of colliding with the first.
        rng = random.Random(f"{self.seed}:{first_rid}")
        wards = rng.choices(self.wards, cum_weights=self.ward_cum, k=count)
        languages = rng.choices(self.languages, cum_weights=self.language_cum, k=count)
        primaries = rng.choices(("line", "fcm", "email"), weights=mix.primary_channel, k=count)
        residents: list[tuple[Any, ...]] = []
        children: list[tuple[Any, ...]] = []
        topics: list[tuple[Any, ...]] = []
        endpoints: list[tuple[Any, ...]] = []
        rand = rng.random
        for i in range(count):
            rid = first_rid + i
            # Growth: more sign-ups lately (u**1.7 puts the mass near "now").
            created = self.now - dt.timedelta(seconds=int(self.span_s * rand() ** 1.7))
            quiet = rng.choice(self.quiet_choices) if rand() < mix.quiet_hours else (None, None)
            primary = primaries[i]
            residents.append(
                (
                    rid,
                    _uuid4(rng.getrandbits(128)),
                    wards[i],
                    languages[i],
                    quiet[0],
                    quiet[1],
                    primary,
                    "active",
                    created,
                    created,
                )
            )
            with_children = rand() < mix.households_with_children
            if with_children:
                kids = bisect.bisect(self.kids_cum, rand() * self.kids_cum[-1]) + 1
                for _ in range(kids):
                    index = self.month_now - int(rand() * 228)  # 0-18 years, in months
                    children.append((self.child_id, rid, index // 12, index % 12 + 1, index))
                    self.child_id += 1
            for key, share in self.topics:
                if rand() < share:
                    topics.append((rid, key))
            if self.has_childcare and rand() < (
                mix.childcare_with_children if with_children else mix.childcare_without
            ):
                topics.append((rid, "childcare"))
            endpoints.append(self._endpoint(rng, rid, primary, created))
            if rand() < mix.second_channel:
                second = "email" if primary != "email" else "line"
                later = created + dt.timedelta(days=int(rand() * 200))
                endpoints.append(self._endpoint(rng, rid, second, min(later, self.now)))
        return SyntheticChunk(residents, children, topics, endpoints)

    def _endpoint(
        self, rng: random.Random, rid: int, channel: str, created: dt.datetime
    ) -> tuple[Any, ...]:
        mix, rand = self.mix, rng.random
        platform = None
        consent, status, withdrawn = "granted", "active", None
        if channel == "line":
            address = f"U{rng.getrandbits(128):032x}"
            if rand() < mix.line_blocked:
                consent, status, withdrawn = "withdrawn", "blocked", created
        elif channel == "fcm":
            address = _fcm_token(rng)
            platform = "ios" if rand() < mix.ios_share else "android"
            if rand() < mix.fcm_pruned:
                status = "pruned"
        else:
            address = f"{rng.choice(_NAMES)}.{rid}@{rng.choice(_DOMAINS)}"
            draw = rand()
            if draw < mix.email_pending:
                consent = "pending"
            elif draw < mix.email_pending + mix.email_withdrawn:
                consent, withdrawn = "withdrawn", created
        token = _b64url(rng.randbytes(12))
        self.endpoint_id += 1
        consent_at = created if consent != "pending" else None
        return (
            self.endpoint_id - 1,
            rid,
            channel,
            address,
            platform,
            consent,
            status,
            token,
            consent_at,
            withdrawn,
            created,
            created,
        )


def _fcm_token(rng: random.Random) -> str:
    """Shaped like a real registration token: instance id, ':APA91b', base64url payload."""
    raw = _b64url(rng.randbytes(117))  # 156 characters
    return f"{raw[:22]}:APA91b{raw[22:156]}"


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _b64url(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).decode()


def _uuid4(bits: int) -> str:
    """str(uuid.UUID(int=bits, version=4)) without the object (this runs a million times)."""
    h = f"{bits:032x}"
    variant = "89ab"[int(h[16], 16) & 3]
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{variant}{h[17:20]}-{h[20:32]}"


# --- loading -----------------------------------------------------------------------------


async def load_synthetic_city(
    db_or_url: Database | str,
    city: CityConfig,
    n: int,
    *,
    seed: int = 1,
    chunk_size: int = DEFAULT_CHUNK,
    mix: Mix = Mix(),
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
    "FirstIds",
    "Mix",
    "SyntheticChunk",
    "generate_city",
    "load_demo_city",
    "load_synthetic_city",
    "ward_shares",
)
