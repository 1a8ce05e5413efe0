"""Fallback under the "preferred" policy: a resident whose endpoint failed for good gets the
next channel (preferred → LINE → app → email), never a channel already tried for this
broadcast. The new deliveries are inserted 'pending' in the caller's transaction (the same
one that records the failure), so a crash can lose neither."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import and_, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from notify.delivery.record import BatchRow
from notify.delivery.snapshot import CHANNEL_ORDER
from notify.delivery.tables import Delivery, DeliveryStatus
from notify.models import Consent, Endpoint, EndpointStatus, Resident, ResidentStatus


def _rank(channel: str, preferred: str | None) -> int:
    if channel == preferred:
        return 0
    return CHANNEL_ORDER.index(channel) + 1 if channel in CHANNEL_ORDER else len(CHANNEL_ORDER) + 1


async def insert_fallbacks(
    session: AsyncSession,
    broadcast_id: int,
    channels: Sequence[str],
    failed: Sequence[BatchRow],
    now: dt.datetime,
) -> list[int]:
    """Insert the next-channel deliveries for `failed`; returns their ids."""
    if not failed:
        return []
    by_resident = {row.resident_id: row for row in failed}
    resident_ids = list(by_resident)
    tried: dict[int, set[str]] = defaultdict(set)
    # Through the residents' endpoints and the (broadcast, endpoint) key: no index on
    # deliveries.resident_id to maintain on every one of a million status changes.
    for resident_id, channel in await session.execute(
        select(Endpoint.resident_id, Endpoint.channel)
        .join(
            Delivery,
            and_(Delivery.broadcast_id == broadcast_id, Delivery.endpoint_id == Endpoint.id),
        )
        .where(Endpoint.resident_id.in_(resident_ids))
    ):
        tried[resident_id].add(channel)
    candidates = await session.execute(
        select(Endpoint.id, Endpoint.resident_id, Endpoint.channel, Resident.preferred_channel)
        .join(Resident, Resident.id == Endpoint.resident_id)
        .where(
            Endpoint.resident_id.in_(resident_ids),
            Endpoint.channel.in_(list(channels)),
            Endpoint.status == EndpointStatus.ACTIVE,
            Endpoint.consent == Consent.GRANTED,
            Resident.status == ResidentStatus.ACTIVE,
        )
    )
    best: dict[int, tuple[int, int, int, str]] = {}  # resident → (rank, -endpoint id, id, ch)
    for endpoint_id, resident_id, channel, preferred in candidates:
        if channel in tried[resident_id]:
            continue
        key = (_rank(channel, preferred), -endpoint_id, endpoint_id, channel)
        if resident_id not in best or key < best[resident_id]:
            best[resident_id] = key
    if not best:
        return []
    rows = [
        {
            "broadcast_id": broadcast_id,
            "resident_id": resident_id,
            "endpoint_id": endpoint_id,
            "channel": channel,
            "ward_code": by_resident[resident_id].ward_code,
            "language": by_resident[resident_id].language,
            "status": DeliveryStatus.PENDING,
            "attempts": 0,
            "fallback_rank": by_resident[resident_id].fallback_rank + 1,
            "updated_at": now,
        }
        for resident_id, (_, _, endpoint_id, channel) in best.items()
    ]
    result = await session.execute(insert(Delivery).returning(Delivery.id), rows)
    return list(result.scalars())
