"""How delivery rows are stored: on PostgreSQL the status change of a big send rewrites each
row in place (a HOT update), which only holds while no index names a changed column and the
pages keep room. A new index on `status` (or a full fillfactor) makes this test fail."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import delete, insert, text

from channels.base import DeliveryResult
from notify.db import Database, utcnow
from notify.delivery.record import BatchRow, record_results
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


@pytest.mark.parametrize("provider_ids", ["one per request", "one per recipient"])
async def test_recording_sent_rewrites_each_row_in_place(
    pg_db: Database, provider_ids: str
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
            recorded = await record_results(
                session, "fcm", rows, results, now=utcnow(), max_attempts=3
            )
            counts = await session.execute(
                text(
                    "SELECT pg_stat_get_xact_tuples_updated('deliveries'::regclass),"
                    " pg_stat_get_xact_tuples_hot_updated('deliveries'::regclass)"
                )
            )
            updated, hot = counts.one()
        assert recorded.sent == ROWS
        assert (updated, hot) == (ROWS, ROWS)
    finally:
        async with pg_db.transaction() as session:
            await session.execute(delete(Delivery).where(Delivery.broadcast_id == broadcast_id))
