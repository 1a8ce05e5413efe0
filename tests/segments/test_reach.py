"""Reach estimates: totals, per channel under both policies, per ward."""

from __future__ import annotations

import datetime as dt

from notify.city import CityConfig
from notify.db import Database
from notify.models import Consent, EndpointStatus
from segments.reach import estimate_reach

from .conftest import add_resident

SEND = dt.date(2025, 4, 15)
WITHDRAWN = ("email", Consent.WITHDRAWN, EndpointStatus.ACTIVE)
PRUNED_FCM = ("fcm", Consent.GRANTED, EndpointStatus.PRUNED)


async def fill(database: Database) -> None:
    async with database.transaction() as s:
        add_resident(s, ward="141313", endpoints=["line", "fcm", "email"])
        add_resident(s, ward="141313", endpoints=["fcm", "fcm", "email"])
        add_resident(s, ward="141321", endpoints=["email"])
        add_resident(s, ward="141321", endpoints=["line", "email"], preferred="email")
        add_resident(s, ward="141330", endpoints=[WITHDRAWN, PRUNED_FCM])  # unreachable
        add_resident(s, ward=None, endpoints=["line"])
        add_resident(s, ward="141313", endpoints=["line"], status="left")


async def test_policy_all_counts_residents_and_endpoints(
    database: Database, city: CityConfig
) -> None:
    await fill(database)
    async with database.sessionmaker() as session:
        reach = await estimate_reach(
            session, {}, send_date=SEND, city=city, channels=["email", "line", "fcm"]
        )
    assert reach.total == 6
    assert reach.reachable == 5
    assert reach.by_channel == {"line": 3, "fcm": 2, "email": 4}
    assert reach.endpoints == {"line": 3, "fcm": 3, "email": 4}
    assert reach.by_ward == {"141313": 2, "141321": 2, "unknown": 1}


async def test_policy_preferred_counts_each_resident_once(
    database: Database, city: CityConfig
) -> None:
    await fill(database)
    async with database.sessionmaker() as session:
        reach = await estimate_reach(
            session,
            {},
            send_date=SEND,
            city=city,
            channels=["line", "fcm", "email"],
            policy="preferred",
        )
        # LINE first; the second resident has no LINE → app; the one who prefers email → email.
        assert reach.by_channel == {"line": 2, "fcm": 1, "email": 2}
        assert sum(reach.by_channel.values()) == reach.reachable == 5
        only_email_and_app = await estimate_reach(
            session, {}, send_date=SEND, city=city, channels=["fcm", "email"], policy="preferred"
        )
        assert only_email_and_app.by_channel == {"fcm": 2, "email": 2}
        assert only_email_and_app.reachable == 4


async def test_segment_and_no_channels(database: Database, city: CityConfig) -> None:
    await fill(database)
    rule = {"type": "wards", "codes": ["141321", "141330"]}
    async with database.sessionmaker() as session:
        reach = await estimate_reach(session, rule, send_date=SEND, city=city, channels=["line"])
        assert (reach.total, reach.reachable, reach.by_channel) == (3, 1, {"line": 1})
        assert reach.by_ward == {"141321": 1}
        nothing = await estimate_reach(session, rule, send_date=SEND, city=city, channels=[])
        assert (nothing.total, nothing.reachable, nothing.by_channel) == (3, 0, {})
