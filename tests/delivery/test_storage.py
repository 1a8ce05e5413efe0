"""How delivery rows are stored: on PostgreSQL the status change of a big send rewrites each
row in place (a HOT update), which only holds while no index names a changed column and the
pages keep room. A new index on `status` (or a full fillfactor) makes this test fail."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from sqlalchemy import delete, insert, text

from channels.base import DeliveryResult
from notify.db import Database, utcnow
from notify.delivery.record import (
    _ALL_SENT,
    _SENT_FROM_ARRAYS,
    BatchRow,
    record_all_sent,
    record_results,
)
from notify.delivery.tables import Delivery, DeliveryStatus
from notify.settings import Settings

ROWS = 300


@pytest.fixture
async def pg_db(_pg_database: str) -> AsyncIterator[Database]:
    database = Database(Settings(database_url=_pg_database).effective_database_url)
    yield database
    await database.close()


async def _queued_rows(db: Database, broadcast_id: int) -> list[BatchRow]:
    values = [
        {
            "broadcast_id": broadcast_id,
            "resident_id": i,
            "endpoint_id": i,
            "channel": "fcm",
            "ward_code": "141313",
            "language": "ja",
            "status": DeliveryStatus.QUEUED,
            "batch_id": broadcast_id,
            "attempts": 0,
            "fallback_rank": 0,
            "updated_at": utcnow(),
        }
        for i in range(1, ROWS + 1)
    ]
    async with db.transaction() as session:
        ids = (await session.execute(insert(Delivery).returning(Delivery.id), values)).scalars()
        return [BatchRow(d, 0, 0, "token", None, "ja", "141313", 0, 0) for d in ids]


@pytest.mark.parametrize("how", ["in a transaction", "all sent, in one statement"])
@pytest.mark.parametrize("provider_ids", ["one per request", "one per recipient"])
async def test_recording_sent_rewrites_each_row_in_place(
    pg_db: Database, provider_ids: str, how: str
) -> None:
    broadcast_id = 10**12 + secrets.randbelow(10**9)  # no foreign key: a private range
    rows = await _queued_rows(pg_db, broadcast_id)
    if provider_ids == "one per request":  # LINE: one UPDATE … WHERE id = ANY
        results = [DeliveryResult.sent("3f6d3e3c-5a3b-4b7e-9c1d-6f1f0e0a9b2c")] * ROWS
    else:  # FCM: one message name each, the UPDATE … FROM unnest(…) path
        names = "projects/hub-sandbox/messages/0:{:016d}%sandbox"  # as long as FCM's
        results = [DeliveryResult.sent(names.format(i)) for i in range(ROWS)]
    try:
        async with pg_db.transaction() as session:
            if how == "in a transaction":
                recorded = await record_results(
                    session, "fcm", rows, results, now=utcnow(), max_attempts=3
                )
                sent = recorded.sent
            else:  # a batch id nobody has: only the marks change anything
                conn = await session.connection()
                sent, _ = await record_all_sent(
                    conn, rows, results, batch_id=-1, token="none", now=utcnow()
                )
            counts = await session.execute(
                text(
                    "SELECT pg_stat_get_xact_tuples_updated('deliveries'::regclass),"
                    " pg_stat_get_xact_tuples_hot_updated('deliveries'::regclass)"
                )
            )
            updated, hot = counts.one()
        assert sent == ROWS
        assert (updated, hot) == (ROWS, ROWS)
    finally:
        async with pg_db.transaction() as session:
            await session.execute(delete(Delivery).where(Delivery.broadcast_id == broadcast_id))


_OTHER_ROWS = text(
    """INSERT INTO deliveries (broadcast_id, resident_id, endpoint_id, channel, language,
       status, attempts, fallback_rank, updated_at)
       SELECT :broadcast_id, n, n, 'fcm', 'ja', 'sent', 1, 0, now()
         FROM generate_series(1, 50000) AS n"""
)


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


_MARKS = {
    "names in a transaction": _SENT_FROM_ARRAYS,
    "names, with the release": _ALL_SENT[False],
    "one name, with the release": _ALL_SENT[True],
}


@pytest.mark.parametrize("statement", list(_MARKS))
async def test_per_recipient_names_are_written_with_one_lookup_per_row(
    pg_db: Database, statement: str
) -> None:
    """FCM's results (a message name per recipient) travel as two arrays; the array must be
    read once and each row found by its key, not the array rescanned per row (once 14 ms
    instead of 1 for a batch of 500). The same for the one statement that marks an all-sent
    batch and releases it (`record.record_all_sent`), with names or LINE's one name."""
    broadcast_id = 10**12 + secrets.randbelow(10**9)
    rows = await _queued_rows(pg_db, broadcast_id)
    ids = [row.delivery_id for row in rows]
    names = [f"projects/hub-sandbox/messages/0:{i:016d}%sandbox" for i in ids]
    marks = _MARKS[statement]
    explain = text(f"EXPLAIN (ANALYZE, FORMAT JSON) {marks.text}").bindparams(
        *marks._bindparams.values()
    )
    params = {"ids": ids, "names": names, "name": names[0], "now": utcnow()}
    params.update(batch_id=-1, token="no batch has this id")
    try:
        async with pg_db.sessionmaker() as session, session.begin():
            # A table of a real send's size around the batch (inside this transaction only):
            # on a few hundred rows any plan is fast and a scan of all of them is fine.
            await session.execute(_OTHER_ROWS, {"broadcast_id": broadcast_id + 1})
            await session.execute(text("ANALYZE deliveries"))
            plan = await session.execute(explain, params)
            top = plan.scalar_one()[0]["Plan"]
            await session.rollback()
        scans = [n for n in _nodes(top) if n["Node Type"] == "Function Scan"]
        assert [n["Actual Loops"] for n in scans] == [1]
        assert sum(n.get("Rows Removed by Join Filter", 0) for n in _nodes(top)) == 0
    finally:
        async with pg_db.transaction() as session:
            await session.execute(delete(Delivery).where(Delivery.broadcast_id == broadcast_id))
