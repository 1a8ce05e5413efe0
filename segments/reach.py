"""How many residents a broadcast will reach, before it is sent.

`total` is every active resident the segment (and topic) selects; `reachable` those with at
least one active, consented endpoint on the broadcast's channels. Per channel:

- policy "all": residents reached on that channel (and `endpoints`: messages to be sent);
- policy "preferred": each resident counted once, on their best channel — their own
  `preferred_channel` first, then LINE → app (fcm) → email.

Per ward: reachable residents by ward code ("unknown" when the registry has no ward).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, case, exists, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from notify.city import CityConfig
from notify.models import Endpoint, Resident
from segments.compile import segment_residents, usable_endpoint
from segments.rules import Rule

DEFAULT_ORDER: tuple[str, ...] = ("line", "fcm", "email")
UNKNOWN_WARD = "unknown"
ChannelPolicy = Literal["all", "preferred"]


@dataclass(frozen=True, slots=True)
class Reach:
    total: int
    reachable: int
    by_channel: dict[str, int] = field(default_factory=dict)
    endpoints: dict[str, int] = field(default_factory=dict)
    by_ward: dict[str, int] = field(default_factory=dict)


def channel_rank(channels: Sequence[str]) -> ColumnElement[int]:
    """Rank of an endpoint for the "preferred" policy (lower is better), to be used with
    `Endpoint` joined to `Resident`: rank % 10 is the channel's position in DEFAULT_ORDER."""
    position = case(
        *(
            (Endpoint.channel == name, i)
            for i, name in enumerate(DEFAULT_ORDER)
            if name in channels
        ),
        else_=9,
    )
    own_choice = case((Endpoint.channel == Resident.preferred_channel, 0), else_=10)
    return own_choice + position


async def estimate_reach(
    session: AsyncSession,
    rule: Rule | Mapping[str, Any],
    *,
    send_date: dt.date | dt.datetime,
    city: CityConfig,
    channels: Sequence[str],
    policy: ChannelPolicy = "all",
    topic: str | None = None,
    emergency: bool = False,
) -> Reach:
    residents = segment_residents(
        rule, send_date=send_date, city=city, topic=topic, emergency=emergency
    )
    channels = [c for c in DEFAULT_ORDER if c in channels]
    total = int(
        await session.scalar(residents.with_only_columns(func.count(), maintain_column_froms=True))
        or 0
    )
    if not channels:
        return Reach(total=total, reachable=0)
    reachable_rows = await session.execute(_reachable_by_ward(residents, channels))
    by_ward = {(ward or UNKNOWN_WARD): int(n) for ward, n in reachable_rows}
    if policy == "preferred":
        by_channel = await _preferred_counts(session, residents, channels)
        endpoints: dict[str, int] = {}
    else:
        by_channel, endpoints = await _all_counts(session, residents, channels)
    return Reach(
        total=total,
        reachable=sum(by_ward.values()),
        by_channel=by_channel,
        endpoints=endpoints,
        by_ward=dict(sorted(by_ward.items())),
    )


def _reachable_by_ward(residents: Select[int], channels: list[str]) -> Select[str | None, int]:
    has_endpoint = exists().where(
        Endpoint.resident_id == Resident.id, Endpoint.channel.in_(channels), usable_endpoint()
    )
    return (
        residents.with_only_columns(Resident.ward_code, func.count(), maintain_column_froms=True)
        .where(has_endpoint)
        .group_by(Resident.ward_code)
    )


async def _all_counts(
    session: AsyncSession, residents: Select[int], channels: list[str]
) -> tuple[dict[str, int], dict[str, int]]:
    query = (
        select(Endpoint.channel, func.count(func.distinct(Endpoint.resident_id)), func.count())
        .where(Endpoint.resident_id.in_(residents), Endpoint.channel.in_(channels))
        .where(usable_endpoint())
        .group_by(Endpoint.channel)
    )
    rows = (await session.execute(query)).all()
    by_channel = dict.fromkeys(channels, 0) | {ch: int(n) for ch, n, _ in rows}
    endpoints = dict.fromkeys(channels, 0) | {ch: int(n) for ch, _, n in rows}
    return by_channel, endpoints


async def _preferred_counts(
    session: AsyncSession, residents: Select[int], channels: list[str]
) -> dict[str, int]:
    best = (
        select(func.min(channel_rank(channels)).label("rank"))
        .select_from(Endpoint)
        .join(Resident, Resident.id == Endpoint.resident_id)
        .where(Endpoint.resident_id.in_(residents), Endpoint.channel.in_(channels))
        .where(usable_endpoint())
        .group_by(Endpoint.resident_id)
        .subquery()
    )
    position = best.c.rank % literal(10)
    rows = (await session.execute(select(position, func.count()).group_by(position))).all()
    counts = dict.fromkeys(channels, 0)
    for pos, n in rows:
        counts[DEFAULT_ORDER[int(pos)]] += int(n)
    return counts
