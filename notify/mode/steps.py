"""The steps of a switch; each persists its state in the `ModeSwitch` row:

default  set LINE's default rich menu to the mode's entry menu      (seconds count here)
app      FCM data message to settings.fcm_mode_topic (the app changes screens)
snapshot (to disaster, several normal menus only) record each user's normal menu
relink   move every per-user link (notify.mode.relink)
restore  (to normal, after a snapshot) give each recorded user their menu back
"""

from __future__ import annotations

from typing import Any

from notify.db import utcnow
from notify.mode import lease, relink
from notify.mode.runtime import ModeRuntime
from notify.mode.tables import ModeSwitch


async def load(rt: ModeRuntime, switch_id: int) -> ModeSwitch | None:
    async with rt.db.sessionmaker() as session:
        return await session.get(ModeSwitch, switch_id)


async def save(rt: ModeRuntime, switch_id: int, **values: Any) -> ModeSwitch:
    async with rt.db.transaction() as session:
        row = await session.get(ModeSwitch, switch_id)
        assert row is not None
        for name, value in values.items():
            setattr(row, name, value)
        return row


async def record_step(rt: ModeRuntime, switch: ModeSwitch, name: str, **state: Any) -> ModeSwitch:
    steps = dict(switch.steps)
    steps[name] = {**steps.get(name, {}), **state, "at": utcnow().isoformat()}
    return await save(rt, switch.id, steps=steps)


async def set_default(rt: ModeRuntime, switch: ModeSwitch) -> ModeSwitch:
    entry = rt.catalog().entry(switch.target_mode)  # type: ignore[arg-type]
    ids = await relink.menu_ids(rt)
    await rt.require_line().set_default_rich_menu(ids[entry.key])
    await save(rt, switch.id, default_set_at=utcnow())
    return await record_step(rt, switch, "default", state="done", menu=entry.key)


async def signal_app(rt: ModeRuntime, switch: ModeSwitch) -> ModeSwitch:
    if rt.fcm is None:
        return await record_step(rt, switch, "app", state="skipped", note="FCM is not configured")
    data = {
        "type": "city_mode",
        "mode": switch.target_mode,
        "since": switch.requested_at.isoformat(),
        "switch_id": str(switch.id),
    }
    name = await rt.fcm.send_data_to_topic(rt.settings.fcm_mode_topic, data)
    return await record_step(
        rt, switch, "app", state="done", message=name, topic=rt.settings.fcm_mode_topic
    )


async def take_snapshot(rt: ModeRuntime, switch: ModeSwitch) -> ModeSwitch:
    catalog = rt.catalog()
    if switch.target_mode != "disaster" or not relink.needs_snapshot(catalog):
        return await record_step(rt, switch, "snapshot", state="skipped")
    ids = await relink.menu_ids(rt)
    keys_by_id = {ids[m.key]: m.key for m in catalog.for_mode("normal")}
    state = dict(switch.steps.get("snapshot", {}), state="running")
    while state.get("state") != "done":
        state = await relink.snapshot_chunk(rt, switch.id, state, keys_by_id)
        switch = await record_step(rt, switch, "snapshot", **state)
        await lease.renew(rt, switch.id)
    return switch


async def relink_users(rt: ModeRuntime, switch: ModeSwitch) -> ModeSwitch:
    plan = dict(switch.relink)
    if not plan:
        plan = relink.new_plan(switch, rt.catalog(), await relink.menu_ids(rt))
        switch = await save(rt, switch.id, relink=plan)
    if plan["strategy"] == "batch" and plan["phase"] != "succeeded":
        plan = await relink.run_batch_strategy(rt, switch.id, plan)
        switch = await save(rt, switch.id, relink=plan)
    while plan["strategy"] == "bulk" and plan["phase"] != "succeeded":
        plan = await relink.bulk_chunk(rt, plan)
        switch = await save(rt, switch.id, relink=plan)
        await lease.renew(rt, switch.id)
    await save(rt, switch.id, relink_done_at=utcnow())
    return await record_step(rt, switch, "relink", state="done", strategy=plan["strategy"])


async def restore_links(rt: ModeRuntime, switch: ModeSwitch) -> ModeSwitch:
    state = dict(switch.steps.get("restore", {}))
    if "from_switch" not in state:
        source = None
        if switch.target_mode == "normal":
            source = await relink.last_snapshot_switch(rt, switch.id)
        if source is None:
            return await record_step(rt, switch, "restore", state="skipped")
        state = {"state": "running", "from_switch": source}
    ids = await relink.menu_ids(rt)
    while state.get("state") != "done":
        state = await relink.restore_chunk(rt, state, ids)
        switch = await record_step(rt, switch, "restore", **state)
        await lease.renew(rt, switch.id)
    return switch
