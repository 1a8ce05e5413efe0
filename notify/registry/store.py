"""Small storage helpers shared by the registry's entry points."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from notify.db import Database
from notify.errors import Conflict
from notify.models import Endpoint, Resident

T = TypeVar("T")


async def in_transaction(
    db: Database, work: Callable[[AsyncSession], Awaitable[T]], *, attempts: int = 3
) -> T:
    """Run `work` in one transaction; re-run it when a concurrent writer won a unique race.

    Two deliveries of the same LINE follow, or a double-clicked form, can both try to create
    the same endpoint: the loser's transaction rolls back whole (nothing half-written) and the
    second run sees the winner's row.
    """
    for attempt in range(attempts):
        try:
            async with db.transaction() as session:
                return await work(session)
        except IntegrityError as exc:
            if attempt == attempts - 1:
                raise Conflict(
                    "同時に更新されました。もう一度お試しください / concurrent update, please retry"
                ) from exc
    raise AssertionError("unreachable")


async def find_endpoint(session: AsyncSession, channel: str, address: str) -> Endpoint | None:
    return (
        await session.execute(
            select(Endpoint).where(Endpoint.channel == channel, Endpoint.address == address)
        )
    ).scalar_one_or_none()


async def delete_endpoint(session: AsyncSession, endpoint: Endpoint) -> bool:
    """Delete one endpoint; the resident too when it was their last way to be reached.

    Returns True when the resident was deleted (minimum personal data: nobody is kept who
    can no longer be reached).
    """
    resident_id = endpoint.resident_id
    await session.execute(delete(Endpoint).where(Endpoint.id == endpoint.id))
    left = await session.scalar(
        select(func.count()).select_from(Endpoint).where(Endpoint.resident_id == resident_id)
    )
    if left:
        return False
    await erase_rows(session, resident_id)
    return True


async def erase_rows(session: AsyncSession, resident_id: int) -> None:
    """Delete a resident and everything hanging off it (explicit, not only FK cascades)."""
    from notify.models import Child, ResidentTopic

    for table in (Child, ResidentTopic, Endpoint):
        await session.execute(delete(table).where(table.resident_id == resident_id))
    await session.execute(delete(Resident).where(Resident.id == resident_id))
