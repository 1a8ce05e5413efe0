"""A small town for delivery tests: residents with endpoints, and broadcasts ready to send."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, insert, select

from notify.db import Database, utcnow
from notify.delivery.tables import Delivery, DeliveryBatch
from notify.models import Broadcast, Endpoint, Resident
from sandbox.runner import SandboxHandles

CHANNELS = ("line", "fcm", "email")
WARDS = ("141313", "141321", "141330")
CONTENT = {
    "ja": {"title": "健診のお知らせ", "body": "{{ resident.ward }}の皆さまへ。健診の日程です。"},
    "en": {"title": "Health check", "body": "Dear residents of {{ resident.ward }}."},
}


def line_id(n: int) -> str:
    return "U" + f"{n:032x}"


@dataclass(slots=True)
class Person:
    line: bool = False
    fcm: bool = False
    email: bool = False
    preferred: str | None = None
    language: str = "ja"
    quiet: tuple[int, int] | None = None
    fcm_token: str | None = None  # overrides the generated token (e.g. "unregistered-…")
    email_address: str | None = None
    ward: str | None = None  # default: the town's wards in turn


@dataclass(slots=True)
class Town:
    """Ids and addresses of what was seeded, by resident."""

    residents: list[int] = field(default_factory=list)
    addresses: dict[int, dict[str, str]] = field(default_factory=dict)

    def all(self, channel: str) -> list[str]:
        return [a[channel] for a in self.addresses.values() if channel in a]


async def seed(db: Database, people: Iterable[Person]) -> Town:
    town = Town()
    now = utcnow()
    async with db.transaction() as session:
        for n, person in enumerate(people, start=1):
            quiet_start, quiet_end = person.quiet or (None, None)
            resident_id = (
                await session.execute(
                    insert(Resident)
                    .values(
                        public_id=str(uuid.uuid4()),
                        ward_code=person.ward or WARDS[n % len(WARDS)],
                        language=person.language,
                        quiet_start_min=quiet_start,
                        quiet_end_min=quiet_end,
                        preferred_channel=person.preferred,
                        status="active",
                        created_at=now,
                        updated_at=now,
                    )
                    .returning(Resident.id)
                )
            ).scalar_one()
            town.residents.append(resident_id)
            addresses: dict[str, str] = {}
            if person.line:
                addresses["line"] = line_id(n)
            if person.fcm:
                addresses["fcm"] = person.fcm_token or f"fcm-token-{n:06d}"
            if person.email:
                addresses["email"] = person.email_address or f"resident{n}@example.jp"
            for channel, address in addresses.items():
                await session.execute(
                    insert(Endpoint).values(
                        resident_id=resident_id,
                        channel=channel,
                        address=address,
                        consent="granted",
                        status="active",
                        token=uuid.uuid4().hex[:16],
                        created_at=now,
                        updated_at=now,
                    )
                )
            town.addresses[resident_id] = addresses
    return town


def delivery_counters(sandboxes: SandboxHandles, channel: str) -> Any:
    """The counters of the sandbox that stands in for `channel`'s provider."""
    if channel == "line":
        return sandboxes.line.base.counters
    if channel == "fcm":
        return sandboxes.fcm.state.counters
    return sandboxes.smtp.state.counters


def times_delivered(sandboxes: SandboxHandles, town: Town, channel: str) -> set[int]:
    """How often each of the town's `channel` addresses got the message ({1}: each once)."""
    counters = delivery_counters(sandboxes, channel)
    return {counters.get("delivered", a) for a in town.all(channel)}


async def make_broadcast(
    db: Database,
    channels: Sequence[str] = ("line", "fcm", "email"),
    *,
    policy: str = "all",
    priority: str = "normal",
    content: dict[str, Any] | None = None,
    segment: dict[str, Any] | None = None,
    status: str = "sending",
) -> int:
    now = utcnow()
    async with db.transaction() as session:
        broadcast = Broadcast(
            title="健診のお知らせ",
            status=status,
            priority=priority,
            content=content or CONTENT,
            segment=segment or {},
            channels=list(channels),
            channel_policy=policy,
            send_at=now,
            started_at=now,
        )
        session.add(broadcast)
        await session.flush()
        return broadcast.id


async def statuses(db: Database, broadcast_id: int) -> dict[tuple[str, str], int]:
    """(channel, status) → count."""
    out: dict[tuple[str, str], int] = {}
    async with db.transaction() as session:
        for channel, status in await session.execute(
            select(Delivery.channel, Delivery.status).where(Delivery.broadcast_id == broadcast_id)
        ):
            out[(channel, status)] = out.get((channel, status), 0) + 1
    return out


async def first_batch(
    db: Database, broadcast_id: int | None = None, channel: str | None = None
) -> int:
    """The lowest batch id (of one broadcast, of one channel, if given)."""
    query = select(func.min(DeliveryBatch.id))
    if broadcast_id is not None:
        query = query.where(DeliveryBatch.broadcast_id == broadcast_id)
    if channel is not None:
        query = query.where(DeliveryBatch.channel == channel)
    async with db.transaction() as session:
        return int(await session.scalar(query))


async def broadcast_status(db: Database, broadcast_id: int) -> str:
    async with db.transaction() as session:
        broadcast = await session.get(Broadcast, broadcast_id)
        assert broadcast is not None
        return broadcast.status


def at_local(minute_of_day: int, tz: Any, day: dt.date | None = None) -> dt.datetime:
    day = day or dt.datetime.now(tz).date()
    return dt.datetime.combine(
        day, dt.time(minute_of_day // 60, minute_of_day % 60), tzinfo=tz
    ).astimezone(dt.UTC)
