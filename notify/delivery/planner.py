"""Planning: stream a broadcast's pending deliveries into provider-sized batches.

Rows are read with a server-side cursor in id order (never all in memory), grouped per
(channel, language, ward) — one rendered message and one LINE aggregation unit per batch —
and written back a page at a time: a batch row, then its deliveries claimed with
`status = 'pending'` in the WHERE clause, so two planners racing can never put one delivery
in two batches. Rows inside the resident's quiet hours become 'held' with `not_before`.

A pass is resumable: whatever is still 'pending' after a crash is planned by the next pass.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from channels.base import ChannelName
from notify.db import Database, utcnow
from notify.delivery.quiet import QuietClock
from notify.delivery.sql import id_in, status_is
from notify.delivery.tables import (
    BatchStatus,
    Delivery,
    DeliveryBatch,
    DeliveryStatus,
    unbatched,
)
from notify.models import Resident

PAGE_ROWS = 5000

GroupKey = tuple[str, str, str | None]  # channel, language, ward_code


@dataclass(slots=True)
class PlanStats:
    batches: list[int] = field(default_factory=list)
    planned: int = 0
    held: int = 0


def aggregation_unit(broadcast_id: int, ward_code: str | None, unit_mode: str) -> str | None:
    """LINE custom aggregation unit: [A-Za-z0-9_], at most 30 characters. None when the
    month's cap of unit names is near (`notify.stats.insight.UnitPlanner`): the message
    still goes out, its LINE opens are then "not measured"."""
    if unit_mode == "none":
        return None
    if unit_mode == "ward" and ward_code:
        return f"b{broadcast_id}_{ward_code}"
    return f"b{broadcast_id}"


class Planner:
    """Accumulates rows and turns them into batches inside the caller's transactions."""

    def __init__(
        self,
        broadcast_id: int,
        sizes: Mapping[str, int],
        *,
        unit_mode: str,
        emergency: bool,
        now: dt.datetime,
        tz: ZoneInfo,
    ) -> None:
        self.broadcast_id = broadcast_id
        self.sizes = sizes
        self.unit_mode = unit_mode
        self.emergency = emergency
        self.quiet = QuietClock(now, tz)
        self.now = now
        self.groups: dict[GroupKey, list[int]] = {}
        self.held: dict[dt.datetime, list[int]] = {}
        self.ready: list[tuple[GroupKey, list[int]]] = []
        self.next_seq: dict[str, int] = {}
        self.stats = PlanStats()

    def add(
        self,
        delivery_id: int,
        channel: str,
        language: str,
        ward_code: str | None,
        quiet_start: int | None,
        quiet_end: int | None,
    ) -> None:
        if not self.emergency:
            until = self.quiet.held_until(quiet_start, quiet_end)
            if until is not None:
                self.held.setdefault(until, []).append(delivery_id)
                return
        key = (channel, language, ward_code)
        group = self.groups.setdefault(key, [])
        group.append(delivery_id)
        if len(group) >= self.sizes[channel]:
            self.ready.append((key, group))
            self.groups[key] = []

    def close_partial_groups(self) -> None:
        for key, group in self.groups.items():
            if group:
                self.ready.append((key, group))
        self.groups = {}

    async def write(self, session: AsyncSession) -> list[tuple[int, str]]:
        """Write the held rows and the ready batches; returns the new (batch id, channel)s."""
        for until, ids in self.held.items():
            result = await session.execute(
                update(Delivery)
                .where(
                    id_in(session, Delivery.id, ids),
                    status_is(Delivery.status, DeliveryStatus.PENDING),
                )
                .values(status=DeliveryStatus.HELD, not_before=until, updated_at=self.now)
                .execution_options(synchronize_session=False)
            )
            self.stats.held += result.rowcount  # type: ignore[attr-defined]
        self.held = {}
        new_ids: list[tuple[int, str]] = []
        for (channel, language, ward_code), ids in self.ready:
            batch_id = await self._create_batch(session, channel, language, ward_code, ids)
            if batch_id is not None:
                new_ids.append((batch_id, channel))
        self.ready = []
        self.stats.batches.extend(b for b, _ in new_ids)
        return new_ids

    async def _create_batch(
        self,
        session: AsyncSession,
        channel: str,
        language: str,
        ward_code: str | None,
        ids: list[int],
    ) -> int | None:
        seq = await self._seq(session, channel)
        is_line = channel == ChannelName.LINE
        batch_id = (
            await session.execute(
                insert(DeliveryBatch)
                .values(
                    broadcast_id=self.broadcast_id,
                    channel=channel,
                    seq=seq,
                    language=language,
                    ward_code=ward_code,
                    size=len(ids),
                    status=BatchStatus.QUEUED,
                    # Made before the first attempt, reused on every retry of this batch.
                    retry_key=str(uuid.uuid4()) if is_line else None,
                    retry_key_size=len(ids) if is_line else None,
                    attempts=0,
                    aggregation_unit=(
                        aggregation_unit(self.broadcast_id, ward_code, self.unit_mode)
                        if is_line
                        else None
                    ),
                    created_at=self.now,
                    updated_at=self.now,
                )
                .returning(DeliveryBatch.id)
            )
        ).scalar_one()
        claimed = (
            await session.execute(
                update(Delivery)
                .where(
                    id_in(session, Delivery.id, ids),
                    status_is(Delivery.status, DeliveryStatus.PENDING),
                )
                .values(status=DeliveryStatus.QUEUED, batch_id=batch_id, updated_at=self.now)
                .execution_options(synchronize_session=False)
            )
        ).rowcount  # type: ignore[attr-defined]
        if claimed != len(ids):  # another planner took some rows first: record the truth
            await session.execute(
                update(DeliveryBatch)
                .where(DeliveryBatch.id == batch_id)
                .values(
                    size=claimed,
                    retry_key_size=claimed if is_line else None,
                    status=BatchStatus.QUEUED if claimed else BatchStatus.DONE,
                )
            )
            if not claimed:
                return None
        self.stats.planned += claimed
        return batch_id

    async def _seq(self, session: AsyncSession, channel: str) -> int:
        if channel not in self.next_seq:
            current = (
                await session.execute(
                    select(func.max(DeliveryBatch.seq)).where(
                        DeliveryBatch.broadcast_id == self.broadcast_id,
                        DeliveryBatch.channel == channel,
                    )
                )
            ).scalar_one()
            self.next_seq[channel] = (current or 0) + 1
        seq = self.next_seq[channel]
        self.next_seq[channel] = seq + 1
        return seq


def pending_rows_query(
    broadcast_id: int,
) -> Select[int, str, str, str | None, int | None, int | None]:
    return (
        select(
            Delivery.id,
            Delivery.channel,
            Delivery.language,
            Delivery.ward_code,
            Resident.quiet_start_min,
            Resident.quiet_end_min,
        )
        .join(Resident, Resident.id == Delivery.resident_id)
        .where(Delivery.broadcast_id == broadcast_id, unbatched(DeliveryStatus.PENDING))
        .order_by(Delivery.id)
    )


BatchesReady = Callable[[list[tuple[int, str]]], Awaitable[None]]


async def plan_pending(db: Database, planner: Planner, on_batches: BatchesReady) -> PlanStats:
    """One streaming pass over the broadcast's pending rows. New batches are committed a page
    at a time and handed to `on_batches` (which enqueues them), so sending starts while a
    big broadcast is still being planned."""
    async with db.engine.connect() as conn:
        result = await conn.stream(
            pending_rows_query(planner.broadcast_id).execution_options(yield_per=PAGE_ROWS)
        )
        async for page in result.partitions(PAGE_ROWS):
            for row in page:
                planner.add(*row)
            new_ids: list[tuple[int, str]] = []
            if planner.ready or planner.held:
                async with db.transaction() as session:
                    new_ids = await planner.write(session)
            await on_batches(new_ids)  # also after a page without batches: keeps the lock
    planner.close_partial_groups()
    async with db.transaction() as session:
        last_ids = await planner.write(session)
    await on_batches(last_ids)
    return planner.stats


def new_planner(
    broadcast_id: int,
    sizes: Mapping[str, int],
    *,
    unit_mode: str,
    emergency: bool,
    tz: ZoneInfo,
    now: dt.datetime | None = None,
) -> Planner:
    return Planner(
        broadcast_id, sizes, unit_mode=unit_mode, emergency=emergency, now=now or utcnow(), tz=tz
    )
