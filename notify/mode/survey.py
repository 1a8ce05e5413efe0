"""Reading and moving per-user links user by user (when menu-level batch operations cannot).

LINE cannot list who is linked to a menu, so the users we can look at are the hub's own LINE
endpoints: `GET /v2/bot/user/{id}/richmenu` per user (paced below LINE's 2,000 requests/s),
then `richmenu/bulk/link` (500 users a request). Work goes in chunks of 500 endpoints with a
cursor (the last endpoint id) the caller persists, so a crash resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Mapping

from sqlalchemy import select

from notify.mode.runtime import ModeRuntime
from notify.models import Endpoint, EndpointStatus

CHUNK = 500  # = LINE's bulk link size
CONCURRENCY = 16


async def line_users_after(
    rt: ModeRuntime, cursor: int, limit: int = CHUNK
) -> list[tuple[int, str]]:
    """(endpoint id, LINE user id) of active LINE endpoints after `cursor`, in id order."""
    async with rt.db.sessionmaker() as session:
        rows = await session.execute(
            select(Endpoint.id, Endpoint.address)
            .where(
                Endpoint.channel == "line",
                Endpoint.status == EndpointStatus.ACTIVE,
                Endpoint.id > cursor,
            )
            .order_by(Endpoint.id)
            .limit(limit)
        )
        return [(int(i), str(a)) for i, a in rows]


async def count_line_users(rt: ModeRuntime) -> int:
    from sqlalchemy import func

    async with rt.db.sessionmaker() as session:
        return int(
            (
                await session.execute(
                    select(func.count()).where(
                        Endpoint.channel == "line", Endpoint.status == EndpointStatus.ACTIVE
                    )
                )
            ).scalar_one()
        )


async def read_links(rt: ModeRuntime, user_ids: list[str]) -> dict[str, str]:
    """user id → the rich menu id of their per-user link (users without one are left out)."""
    line = rt.require_line()
    interval = 1.0 / max(rt.settings.mode_survey_per_s, 1.0)
    found: dict[str, str] = {}
    todo = iter(user_ids)
    started = time.monotonic()
    issued = 0

    async def worker() -> None:
        nonlocal issued
        for user_id in todo:
            wait = started + issued * interval - time.monotonic()
            issued += 1
            if wait > 0:
                await asyncio.sleep(wait)
            menu_id = await line.rich_menu_of_user(user_id)
            if menu_id is not None:
                found[user_id] = menu_id

    await asyncio.gather(*(worker() for _ in range(min(CONCURRENCY, len(user_ids)))))
    return found


async def move_links(rt: ModeRuntime, links: Mapping[str, str], moves: Mapping[str, str]) -> int:
    """Bulk-link each user whose current menu is a key of `moves` to its value; the count."""
    by_target: dict[str, list[str]] = defaultdict(list)
    for user_id, menu_id in links.items():
        if menu_id in moves:
            by_target[moves[menu_id]].append(user_id)
    line = rt.require_line()
    for target, users in by_target.items():
        await line.link_rich_menu(target, users)
    return sum(len(users) for users in by_target.values())
