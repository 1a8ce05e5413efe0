"""Segments run as SQL on SQLite and PostgreSQL: ages on the send date, combinators, topics."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Column, Integer, MetaData, Table, insert, select, text

from notify.city import CityConfig
from notify.db import Database
from notify.models import Consent, EndpointStatus, Resident
from segments.compile import segment_residents

from .conftest import add_resident

SEND = dt.date(2025, 4, 15)
AGE_3_TO_5 = {"type": "child_age", "min": {"years": 3}, "max": {"years": 5, "months": 11}}


async def ids(db: Database, rule: Any, city: CityConfig, **kw: Any) -> set[int]:
    kw.setdefault("send_date", SEND)
    async with db.sessionmaker() as session:
        return set((await session.scalars(segment_residents(rule, city=city, **kw))).all())


async def test_child_age_bounds_are_inclusive_in_months(
    database: Database, city: CityConfig
) -> None:
    async with database.transaction() as s:
        exactly_3 = add_resident(s, children=[(2022, 4)])  # 36 months in April 2025
        almost_3 = add_resident(s, children=[(2022, 5)])  # 35 months
        last_month_of_5 = add_resident(s, children=[(2019, 5)])  # 71 months
        already_6 = add_resident(s, children=[(2019, 4)])  # 72 months
        no_children = add_resident(s)
    found = await ids(database, AGE_3_TO_5, city)
    assert exactly_3.id in found and last_month_of_5.id in found
    assert not found & {almost_3.id, already_6.id, no_children.id}


async def test_age_is_taken_on_the_send_date_in_the_city_timezone(
    database: Database, city: CityConfig
) -> None:
    async with database.transaction() as s:
        turns_3_in_april = add_resident(s, children=[(2022, 4)])
    # 2025-03-31 15:30 UTC is already 1 April in Tokyo.
    april_in_tokyo = dt.datetime(2025, 3, 31, 15, 30, tzinfo=dt.UTC)
    march_in_tokyo = dt.datetime(2025, 3, 31, 14, 30, tzinfo=dt.UTC)
    assert await ids(database, AGE_3_TO_5, city, send_date=april_in_tokyo) == {turns_3_in_april.id}
    assert await ids(database, AGE_3_TO_5, city, send_date=march_in_tokyo) == set()


async def test_any_child_in_range_is_enough_and_counted_once(
    database: Database, city: CityConfig
) -> None:
    async with database.transaction() as s:
        family = add_resident(s, children=[(2010, 1), (2021, 6), (2021, 7)])
    async with database.sessionmaker() as session:
        rows = (
            await session.scalars(segment_residents(AGE_3_TO_5, send_date=SEND, city=city))
        ).all()
    assert rows == [family.id]


async def test_open_upper_bound(database: Database, city: CityConfig) -> None:
    async with database.transaction() as s:
        teen = add_resident(s, children=[(2010, 1)])
        baby = add_resident(s, children=[(2025, 1)])
    assert await ids(database, {"type": "child_age", "min": {"years": 12}}, city) == {teen.id}
    assert await ids(database, {"type": "child_age", "max": {"months": 6}}, city) == {baby.id}


async def test_combinators_and_not_with_unknown_ward(database: Database, city: CityConfig) -> None:
    async with database.transaction() as s:
        kawasaki_ja = add_resident(s, ward="141313", language="ja", endpoints=["line"])
        saiwai_en = add_resident(s, ward="141321", language="en", endpoints=["email"])
        tama_ja = add_resident(s, ward="141356", language="ja")
        no_ward = add_resident(s, ward=None, language="vi")
        left = add_resident(s, ward="141313", status="left")
    two_wards = {"type": "wards", "codes": ["141313", "141321"]}
    assert await ids(database, two_wards, city) == {kawasaki_ja.id, saiwai_en.id}
    assert await ids(database, {"type": "not", "rule": two_wards}, city) == {tama_ja.id, no_ward.id}
    both = {"type": "all", "rules": [two_wards, {"type": "languages", "codes": ["ja"]}]}
    assert await ids(database, both, city) == {kawasaki_ja.id}
    either = {
        "type": "any",
        "rules": [
            {"type": "languages", "codes": ["vi"]},
            {"type": "channels", "channels": ["email"]},
        ],
    }
    assert await ids(database, either, city) == {saiwai_en.id, no_ward.id}
    assert await ids(database, {"type": "any", "rules": []}, city) == set()
    everyone = await ids(database, {}, city)
    assert left.id not in everyone and len(everyone) == 4


async def test_channels_leaf_needs_active_consented_endpoint(
    database: Database, city: CityConfig
) -> None:
    async with database.transaction() as s:
        ok = add_resident(s, endpoints=["line"])
        add_resident(s, endpoints=[("line", Consent.PENDING, EndpointStatus.ACTIVE)])
        add_resident(s, endpoints=[("line", Consent.GRANTED, EndpointStatus.BLOCKED)])
        add_resident(s, endpoints=[("line", Consent.WITHDRAWN, EndpointStatus.ACTIVE)])
        add_resident(s, endpoints=["fcm"])
    assert await ids(database, {"type": "channels", "channels": ["line"]}, city) == {ok.id}


async def test_broadcast_topic_needs_a_subscription_unless_emergency_overrides(
    database: Database, city: CityConfig
) -> None:
    async with database.transaction() as s:
        subscribed = add_resident(s, topics=["disaster", "childcare"])
        other = add_resident(s, topics=["events"])
    assert await ids(database, {}, city, topic="disaster") == {subscribed.id}
    # disaster is overridable: an emergency reaches everyone
    assert await ids(database, {}, city, topic="disaster", emergency=True) == {
        subscribed.id,
        other.id,
    }
    # childcare is not: even an emergency respects the opt-out
    assert await ids(database, {}, city, topic="childcare", emergency=True) == {subscribed.id}
    topics_leaf = {"type": "topics", "keys": ["events", "tax"]}
    assert await ids(database, topics_leaf, city) == {other.id}


async def test_usable_inside_insert_select(database: Database, city: CityConfig) -> None:
    """The delivery engine snapshots recipients with INSERT … SELECT."""
    async with database.transaction() as s:
        a = add_resident(s, children=[(2021, 1)])
        add_resident(s, children=[(2015, 1)])
    snapshot = Table("segment_snapshot_test", MetaData(), Column("resident_id", Integer))
    async with database.transaction() as session:
        await session.run_sync(lambda sync: snapshot.create(sync.connection(), checkfirst=True))
        try:
            await session.execute(
                insert(snapshot).from_select(
                    ["resident_id"], segment_residents(AGE_3_TO_5, send_date=SEND, city=city)
                )
            )
            rows = (await session.execute(select(snapshot.c.resident_id))).scalars().all()
        finally:
            await session.run_sync(lambda sync: snapshot.drop(sync.connection()))
    assert rows == [a.id]


async def test_every_table_is_reached_through_an_index(
    database: Database, city: CityConfig
) -> None:
    """With sequential scans priced out, no table access may remain a full scan."""
    rule = {
        "type": "all",
        "rules": [
            AGE_3_TO_5,
            {"type": "wards", "codes": ["141313", "141321"]},
            {"type": "languages", "codes": ["ja"]},
            {"type": "topics", "keys": ["childcare"]},
            {"type": "channels", "channels": ["line"]},
        ],
    }
    query = segment_residents(rule, send_date=SEND, city=city, topic="childcare")
    async with database.engine.connect() as conn:
        compiled = query.compile(conn.sync_engine, compile_kwargs={"literal_binds": True})
        if database.is_sqlite:
            plan = " ".join(
                str(r[-1]) for r in await conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))
            )
            assert "SCAN children" not in plan and "SCAN endpoints" not in plan, plan
            assert "SCAN resident_topics" not in plan, plan
        else:
            await conn.execute(text("SET enable_seqscan = off"))
            plan = " ".join(r[0] for r in await conn.execute(text(f"EXPLAIN {compiled}")))
            assert "Seq Scan" not in plan, plan
    assert Resident.__tablename__ in str(compiled)
