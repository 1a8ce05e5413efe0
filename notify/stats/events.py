"""Recording what happens after a message left the hub: opens, clicks, bounces.

Each (broadcast, endpoint, channel, kind) is stored once; a repeat is not an error here,
the caller decides whether a repeat is refused (app reports) or silently absorbed (a pixel a
mail client fetches twice). Inserts use ON CONFLICT DO NOTHING so concurrent repeats from
several server processes cannot double count.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from notify.models import Broadcast
from notify.stats.queries import deliveries
from notify.stats.tables import EmailBounce, OpenEvent, OpenKind


def dialect_insert(session: AsyncSession, table: Any) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


async def broadcast_exists(session: AsyncSession, broadcast_id: int) -> bool:
    query = select(exists().where(Broadcast.id == broadcast_id))
    return bool((await session.execute(query)).scalar())


async def was_targeted(
    session: AsyncSession, broadcast_id: int, endpoint_id: int, channel: str
) -> bool:
    """The delivery engine has a row for this endpoint in this broadcast (any status)."""
    d = deliveries.c
    query = select(
        exists().where(
            d.broadcast_id == broadcast_id, d.endpoint_id == endpoint_id, d.channel == channel
        )
    )
    return bool((await session.execute(query)).scalar())


async def record_open(
    session: AsyncSession, broadcast_id: int, endpoint_id: int, channel: str, kind: OpenKind
) -> bool:
    """Store the event once; True when this call stored it (the first time)."""
    statement = (
        dialect_insert(session, OpenEvent)
        .values(broadcast_id=broadcast_id, endpoint_id=endpoint_id, channel=channel, kind=kind)
        .on_conflict_do_nothing(index_elements=["broadcast_id", "endpoint_id", "channel", "kind"])
    )
    result = await session.execute(statement)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def record_bounce(
    session: AsyncSession, broadcast_id: int, endpoint_id: int, *, permanent: bool = True
) -> bool:
    """Called by whoever reads bounce reports (DSNs): the message was accepted, then bounced.

    Email "delivered" is accepted minus these. One row per (broadcast, endpoint); a permanent
    bounce after a soft one makes it permanent. True when this call stored or upgraded it.
    """
    insert = dialect_insert(session, EmailBounce).values(
        broadcast_id=broadcast_id, endpoint_id=endpoint_id, permanent=permanent
    )
    keys = ["broadcast_id", "endpoint_id"]
    statement = (
        insert.on_conflict_do_update(
            index_elements=keys,
            set_={"permanent": True},
            where=EmailBounce.permanent.is_(False),
        )
        if permanent
        else insert.on_conflict_do_nothing(index_elements=keys)
    )
    result = await session.execute(statement)
    return bool(result.rowcount)  # type: ignore[attr-defined]
