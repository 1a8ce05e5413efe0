"""Reading broadcasts for the pages: the list, one broadcast with who did what, and delivery
progress (from `notify.delivery.control`, the same function the JSON API uses)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from notify.city import CityConfig
from notify.console.segment_form import form_from_rule
from notify.db import Database
from notify.delivery import control
from notify.errors import BROADCAST_NOT_FOUND, NotFound
from notify.models import Broadcast, StaffUser
from segments.rules import describe, parse_rule

PAGE_SIZE = 50
LIVE_STATUSES = frozenset({"sending", "paused"})
DELIVERY_STATUSES = frozenset(
    {"scheduled", "sending", "paused", "completed", "cancelled", "failed"}
)


@dataclass(frozen=True, slots=True)
class BroadcastView:
    broadcast: Broadcast
    staff_names: dict[int, str]
    audience: str

    def name(self, staff_id: int | None) -> str:
        return "—" if staff_id is None else self.staff_names.get(staff_id, f"#{staff_id}")


async def _staff_names(session: AsyncSession, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = await session.execute(
        select(StaffUser.id, StaffUser.display_name).where(StaffUser.id.in_(ids))
    )
    return {int(i): str(n) for i, n in rows}


def audience_text(segment: dict[str, Any] | None, city: CityConfig) -> str:
    try:
        return describe(parse_rule(segment or {}, city), city)
    except Exception:  # an old or foreign rule must not break the page; show it raw
        return str(segment)


def sample_ward(segment: dict[str, Any] | None, city: CityConfig) -> str | None:
    """A ward the previews are drawn for: the segment's first ward, if it names any."""
    try:
        wards = form_from_rule(segment, city).wards
    except Exception:  # a rule the builder cannot show: the city's first ward will do
        return None
    return wards[0] if wards else None


async def list_broadcasts(
    db: Database, *, statuses: tuple[str, ...] = (), page: int = 1
) -> tuple[list[Broadcast], dict[int, str], int]:
    async with db.sessionmaker() as session:
        query = select(Broadcast)
        count = select(func.count()).select_from(Broadcast)
        if statuses:
            query = query.where(Broadcast.status.in_(statuses))
            count = count.where(Broadcast.status.in_(statuses))
        total = int(await session.scalar(count) or 0)
        rows = (
            await session.scalars(
                query.order_by(Broadcast.id.desc())
                .limit(PAGE_SIZE)
                .offset((max(page, 1) - 1) * PAGE_SIZE)
            )
        ).all()
        ids = {i for b in rows for i in (b.created_by, b.submitted_by, b.approved_by) if i}
        names = await _staff_names(session, ids)
    return list(rows), names, total


async def load_broadcast(db: Database, broadcast_id: int, city: CityConfig) -> BroadcastView:
    async with db.sessionmaker() as session:
        broadcast = await session.get(Broadcast, broadcast_id)
        if broadcast is None:
            raise NotFound(BROADCAST_NOT_FOUND)
        ids = {
            i for i in (broadcast.created_by, broadcast.submitted_by, broadcast.approved_by) if i
        }
        names = await _staff_names(session, ids)
    return BroadcastView(broadcast, names, audience_text(broadcast.segment, city))


async def delivery_progress(db: Database, broadcast: Broadcast) -> dict[str, Any] | None:
    if broadcast.status not in DELIVERY_STATUSES:
        return None
    data = await control.progress(db, broadcast.id)
    for counts in data["channels"].values():  # type: ignore[attr-defined]
        counts["done"] = sum(counts[k] for k in ("sent", "failed", "skipped", "cancelled"))
    return data
