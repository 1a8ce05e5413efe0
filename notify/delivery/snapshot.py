"""The recipient snapshot: one `INSERT … SELECT` when sending starts.

Who receives a broadcast is decided once, in the database, from the segment rule on the send
date joined with the residents' usable endpoints on the broadcast's channels:

- policy "all": every usable endpoint of every selected resident;
- policy "preferred": one endpoint per resident — the resident's preferred channel when it
  is one of the broadcast's, else LINE, then the app (fcm), then email; newest endpoint first.

Nothing passes through Python, so a million recipients cost one statement.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Case, Integer, case, func, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from channels.base import ChannelName
from notify.city import CityConfig
from notify.delivery.tables import Delivery, DeliveryStatus
from notify.models import Broadcast, Consent, Endpoint, EndpointStatus, Resident
from segments.compile import segment_residents

# Fallback order after the resident's own preference.
CHANNEL_ORDER: tuple[str, ...] = (ChannelName.LINE, ChannelName.FCM, ChannelName.EMAIL)

SNAPSHOT_COLUMNS = (
    "broadcast_id",
    "resident_id",
    "endpoint_id",
    "channel",
    "ward_code",
    "language",
    "status",
    "attempts",
    "fallback_rank",
    "updated_at",
)


def channel_rank(channel_column: Any, preferred_column: Any) -> Case[int]:
    """0 for the resident's preferred channel, then LINE, fcm, email."""
    order = {name: i + 1 for i, name in enumerate(CHANNEL_ORDER)}
    return case(
        (channel_column == preferred_column, 0),
        *((channel_column == name, rank) for name, rank in order.items()),
        else_=len(order) + 1,
    )


async def snapshot_recipients(
    session: AsyncSession, broadcast: Broadcast, city: CityConfig, now: dt.datetime
) -> int:
    """Insert one 'pending' delivery per recipient endpoint; returns how many."""
    segment = segment_residents(
        broadcast.segment or {},
        send_date=now,
        city=city,
        topic=broadcast.topic,
        emergency=broadcast.priority == "emergency",
    )
    residents = segment.add_columns(
        Resident.ward_code, Resident.language, Resident.preferred_channel
    ).subquery("segment")
    channels: Sequence[str] = [c for c in broadcast.channels if c in CHANNEL_ORDER]
    candidates = (
        select(
            Endpoint.id.label("endpoint_id"),
            Endpoint.resident_id.label("resident_id"),
            Endpoint.channel.label("channel"),
            residents.c.ward_code,
            residents.c.language,
        )
        .join(residents, residents.c.id == Endpoint.resident_id)
        .where(
            Endpoint.status == EndpointStatus.ACTIVE,
            Endpoint.consent == Consent.GRANTED,
            Endpoint.channel.in_(channels),
        )
    )
    if broadcast.channel_policy == "preferred":
        ranked = candidates.add_columns(
            func.row_number()
            .over(
                partition_by=Endpoint.resident_id,
                order_by=(
                    channel_rank(Endpoint.channel, residents.c.preferred_channel),
                    Endpoint.id.desc(),
                ),
            )
            .label("rn")
        ).subquery("ranked")
        source = select(
            ranked.c.endpoint_id,
            ranked.c.resident_id,
            ranked.c.channel,
            ranked.c.ward_code,
            ranked.c.language,
        ).where(ranked.c.rn == 1)
    else:
        source = candidates
    final = source.subquery("recipients")
    statement = insert(Delivery).from_select(
        list(SNAPSHOT_COLUMNS),
        select(
            literal(broadcast.id),
            final.c.resident_id,
            final.c.endpoint_id,
            final.c.channel,
            final.c.ward_code,
            func.coalesce(final.c.language, literal("ja")),
            literal(DeliveryStatus.PENDING.value),
            literal(0, Integer),
            literal(0, Integer),
            literal(now, Delivery.updated_at.type),
        ),
    )
    result = await session.execute(statement)
    return int(result.rowcount)  # type: ignore[attr-defined]
