"""Moving the residents who have a per-user rich menu link (a per-user link beats the default).

Plan (persisted in `ModeSwitch.relink` before anything is sent, so a rerun repeats nothing):

- **batch** (the normal way): one `richmenu/batch` request with a `link from→to` operation
  per menu of the old mode. One operation moves *every* user linked to `from`, including
  users the hub does not know (tab menus are per-user links LINE makes itself), so a whole
  tab set switches in one request whatever the number of users. Progress is polled;
  a failed batch is resumed with its `resumeRequestKey`.
- **bulk** (fallback): when no batch request is left this hour (3/hour) or a batch keeps
  failing, each LINE endpoint the hub knows is read and moved with bulk link (500 users
  a request). Users LINE knows but the hub does not are not reached that way (reported).

Switching back: `link` from each disaster menu to the normal menu whose users went there
(its counterpart when several did). When the normal mode has several menus, that is
ambiguous, so the switch to disaster first records each user's normal menu
(`LinkSnapshot`) and the switch back restores it user by user with bulk link.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import select

from notify.mode import lease
from notify.mode.batches import BatchWindowSpent, run_batch, settle_others
from notify.mode.menus import MenuCatalog, Mode
from notify.mode.runtime import ModeRuntime
from notify.mode.survey import CHUNK, count_line_users, line_users_after, move_links, read_links
from notify.mode.tables import LinkSnapshot, ModeMenu, ModeSwitch

BATCH_DEADLINE_S = 240.0  # then the job hands over to a later run (arq's job timeout is 600)


class Wait(Exception):
    """Relinking cannot go on now; run the switch again at `retry_at` (or soon)."""

    def __init__(self, reason: str, retry_at: dt.datetime | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_at = retry_at


def needs_snapshot(catalog: MenuCatalog) -> bool:
    """With one normal menu, every disaster menu leads back to it: menus alone restore
    each user's link. With several, only a per-user record can."""
    return len(catalog.for_mode("normal")) > 1


async def menu_ids(rt: ModeRuntime) -> dict[str, str]:
    async with rt.db.sessionmaker() as session:
        return {
            row.key: row.rich_menu_id for row in (await session.execute(select(ModeMenu))).scalars()
        }


def plan_pairs(catalog: MenuCatalog, target: Mode) -> list[tuple[str, str]]:
    """(from key, to key) for every menu of the mode being left."""
    if target == "disaster":
        return [(m.key, m.counterpart) for m in catalog.for_mode("normal")]
    pairs = []
    for menu in catalog.for_mode("disaster"):
        came_from = [n.key for n in catalog.for_mode("normal") if n.counterpart == menu.key]
        pairs.append((menu.key, came_from[0] if len(came_from) == 1 else menu.counterpart))
    return pairs


def new_plan(switch: ModeSwitch, catalog: MenuCatalog, ids: dict[str, str]) -> dict[str, Any]:
    pairs = plan_pairs(catalog, switch.target_mode)  # type: ignore[arg-type]
    return {
        "strategy": "batch",
        "pairs": [list(p) for p in pairs],
        "operations": [{"type": "link", "from": ids[a], "to": ids[b]} for a, b in pairs],
        "resume_key": f"switch-{switch.id}-{uuid.uuid4().hex[:12]}",
        "phase": "pending",
    }


async def run_batch_strategy(
    rt: ModeRuntime, switch_id: int, plan: dict[str, Any]
) -> dict[str, Any]:
    """Returns the updated plan; raises Wait when the batch is still going or cannot be sent."""
    key = plan["resume_key"]

    async def keepalive() -> None:
        await lease.renew(rt, switch_id)

    if not await settle_others(rt, key, BATCH_DEADLINE_S / 2, keepalive):
        raise Wait("an earlier richmenu batch is still running")
    try:
        phase = await run_batch(
            rt,
            plan["operations"],
            resume_key=key,
            purpose="switch",
            switch_id=switch_id,
            deadline_s=BATCH_DEADLINE_S,
            keepalive=keepalive,
        )
    except BatchWindowSpent as exc:
        return {
            **plan,
            "strategy": "bulk",
            "phase": "pending",
            "fallback": "batch window spent",
            "batch_free_at": exc.free_at.isoformat(),
        }
    if phase == "ongoing":
        raise Wait("LINE is still applying the richmenu batch")
    if phase == "failed":
        return {**plan, "strategy": "bulk", "phase": "pending", "fallback": "batch failed"}
    return {**plan, "phase": "succeeded"}


async def bulk_chunk(rt: ModeRuntime, plan: dict[str, Any]) -> dict[str, Any]:
    """One chunk of the bulk strategy: read CHUNK users' links, move those on a `from` menu."""
    if "users_total" not in plan:
        plan = {
            **plan,
            "users_total": await count_line_users(rt),
            "cursor": 0,
            "users_checked": 0,
            "users_moved": 0,
        }
    chunk = await line_users_after(rt, int(plan["cursor"]), CHUNK)
    if not chunk:
        return {**plan, "phase": "succeeded"}
    links = await read_links(rt, [user for _, user in chunk])
    moves = {op["from"]: op["to"] for op in plan["operations"]}
    moved = await move_links(rt, links, moves)
    return {
        **plan,
        "cursor": chunk[-1][0],
        "users_checked": int(plan["users_checked"]) + len(chunk),
        "users_moved": int(plan["users_moved"]) + moved,
    }


async def snapshot_chunk(
    rt: ModeRuntime, switch_id: int, state: dict[str, Any], keys_by_id: dict[str, str]
) -> dict[str, Any]:
    """Record which normal menu each user (of one chunk) is linked to, before the switch."""
    chunk = await line_users_after(rt, int(state.get("cursor", 0)), CHUNK)
    if not chunk:
        return {**state, "state": "done"}
    links = await read_links(rt, [user for _, user in chunk])
    async with rt.db.transaction() as session:
        for user, menu_id in links.items():
            key = keys_by_id.get(menu_id)
            if key is not None and await session.get(LinkSnapshot, (switch_id, user)) is None:
                session.add(LinkSnapshot(switch_id=switch_id, line_user_id=user, menu_key=key))
    return {
        **state,
        "cursor": chunk[-1][0],
        "recorded": int(state.get("recorded", 0))
        + sum(1 for m in links.values() if m in keys_by_id),
    }


async def restore_chunk(
    rt: ModeRuntime, state: dict[str, Any], ids: dict[str, str]
) -> dict[str, Any]:
    """Bulk-link one chunk of recorded users back to the normal menu they had."""
    source = int(state["from_switch"])
    async with rt.db.sessionmaker() as session:
        rows = list(
            (
                await session.execute(
                    select(LinkSnapshot)
                    .where(
                        LinkSnapshot.switch_id == source,
                        LinkSnapshot.line_user_id > str(state.get("cursor", "")),
                    )
                    .order_by(LinkSnapshot.line_user_id)
                    .limit(CHUNK)
                )
            ).scalars()
        )
    if not rows:
        return {**state, "state": "done"}
    by_key: dict[str, list[str]] = {}
    for row in rows:
        if row.menu_key in ids:
            by_key.setdefault(row.menu_key, []).append(row.line_user_id)
    line = rt.require_line()
    for key, users in by_key.items():
        await line.link_rich_menu(ids[key], users)
    return {
        **state,
        "cursor": rows[-1].line_user_id,
        "restored": int(state.get("restored", 0)) + sum(len(u) for u in by_key.values()),
    }


async def last_snapshot_switch(rt: ModeRuntime, before_id: int) -> int | None:
    """The switch to disaster this switch undoes, if it recorded per-user links."""
    async with rt.db.sessionmaker() as session:
        forward = (
            await session.execute(
                select(ModeSwitch.id)
                .where(ModeSwitch.id < before_id, ModeSwitch.target_mode == "disaster")
                .order_by(ModeSwitch.id.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        if forward is None:
            return None
        recorded = (
            await session.execute(
                select(LinkSnapshot.line_user_id).where(LinkSnapshot.switch_id == forward).limit(1)
            )
        ).scalar_one_or_none()
    return forward if recorded is not None else None
