"""The mode switch: request (API, JMA, CLI) and run (an arq job), step by step.

`request_switch` decides in one transaction: the mode in force changes at once (status
shows it), a `ModeSwitch` row is created with its reason and actor, the audit log records it,
and a job is queued after the commit. Asking for the mode already in force is a no-op, or
resumes its switch when that did not finish: running it again finishes a crashed switch.

`run_switch` does the steps in order, persisting each one's state in the row:

    default  set LINE's default rich menu to the mode's entry menu      (seconds count here)
    app      FCM data message to settings.fcm_mode_topic (the app changes screens)
    snapshot (to disaster, several normal menus only) record each user's normal menu
    relink   move every per-user link (notify.mode.relink)
    restore  (to normal, after a snapshot) give each recorded user their menu back

A newer switch supersedes an unfinished older one: the older job stops at its next step.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from notify import audit
from notify.db import utcnow
from notify.errors import ChannelError, Conflict, HubError, PermanentChannelError
from notify.mode import relink
from notify.mode.menus import Mode
from notify.mode.runtime import ModeRuntime
from notify.mode.state import STATE_ID, locked_state
from notify.mode.tables import ModeMenu, ModeState, ModeSwitch
from notify.web.auth import Principal

log = logging.getLogger(__name__)

JOB = "mode_run_switch"
LEASE_MS = 60_000
UNFINISHED = ("pending", "running", "waiting", "failed")
Actor = Principal | tuple[str, str | None]


@dataclass(frozen=True, slots=True)
class SwitchRequest:
    switch: ModeSwitch | None  # the switch doing the work (None: normal since ever)
    created: bool  # a new switch (the mode changed)
    queued: bool  # a job was queued (new, or resuming an unfinished switch)


def actor_label(actor: Actor) -> str:
    if isinstance(actor, Principal):
        return actor.login or f"staff {actor.staff_id}"
    return "気象庁電文（自動） / JMA telegram (automatic)" if actor[1] == "jma" else actor[0]


async def request_switch(
    rt: ModeRuntime,
    target: Mode,
    reason: str,
    actor: Actor,
    *,
    source: str = "staff",
    audit_detail: dict[str, Any] | None = None,
) -> SwitchRequest:
    """Refuses — changing nothing — when the menus are not synced to LINE."""
    catalog = rt.catalog()
    async with rt.db.sessionmaker() as session:
        synced = set((await session.execute(select(ModeMenu.key))).scalars())
    missing = sorted({m.key for m in catalog.menus} - synced)
    if missing:
        raise Conflict(
            "リッチメニューが LINE に同期されていません / rich menus are not synced to LINE "
            f"(missing: {', '.join(missing)}): run `python -m notify menus sync`",
            fields={"menus": "not synced"},
        )
    actor_type, actor_id = actor.audit_actor if isinstance(actor, Principal) else actor
    async with rt.db.transaction() as session:
        state = await locked_state(session)
        current = (
            await session.get(ModeSwitch, state.switch_id) if state and state.switch_id else None
        )
        in_force = state.mode if state is not None else "normal"
        if in_force == target:
            if current is not None and current.status in UNFINISHED:
                current.status = "pending"
                audit.record(
                    session,
                    actor,
                    "mode.switch.resume",
                    target_type="mode_switch",
                    target_id=current.id,
                    mode=target,
                )
                resume, created = current, False
            else:
                return SwitchRequest(current, created=False, queued=False)
        else:
            if current is not None and current.status in UNFINISHED:
                current.status = "superseded"
            created = True
            resume = ModeSwitch(
                target_mode=target,
                from_mode=in_force,
                reason=reason,
                actor_type=actor_type,
                actor_id=actor_id,
                actor_label=actor_label(actor),
                source=source,
                status="pending",
                steps={},
                relink={},
            )
            session.add(resume)
            await session.flush()
            if state is None:
                state = ModeState(id=STATE_ID)
                session.add(state)
            state.mode, state.since, state.reason = target, utcnow(), reason
            state.actor_type, state.actor_id = actor_type, actor_id
            state.actor_label, state.switch_id = resume.actor_label, resume.id
            audit.record(
                session,
                actor,
                "mode.switch",
                target_type="mode_switch",
                target_id=resume.id,
                mode=target,
                from_mode=in_force,
                reason=reason,
                source=source,
                **(audit_detail or {}),
            )
    await enqueue(rt, resume.id)
    return SwitchRequest(resume, created=created, queued=True)


async def enqueue(rt: ModeRuntime, switch_id: int, *, at: dt.datetime | None = None) -> None:
    if rt.redis is None:
        return
    await rt.redis.enqueue_job(
        JOB,
        switch_id,
        _job_id=f"mode-switch-{switch_id}-{uuid.uuid4().hex[:8]}",
        _defer_until=at,
    )


# --- running a switch ---------------------------------------------------------------------


async def _load(rt: ModeRuntime, switch_id: int) -> ModeSwitch | None:
    async with rt.db.sessionmaker() as session:
        return await session.get(ModeSwitch, switch_id)


async def save(rt: ModeRuntime, switch_id: int, **values: Any) -> ModeSwitch:
    async with rt.db.transaction() as session:
        row = await session.get(ModeSwitch, switch_id)
        assert row is not None
        for name, value in values.items():
            setattr(row, name, value)
        return row


async def _step(rt: ModeRuntime, switch: ModeSwitch, name: str, **state: Any) -> ModeSwitch:
    steps = dict(switch.steps)
    steps[name] = {**steps.get(name, {}), **state, "at": utcnow().isoformat()}
    return await save(rt, switch.id, steps=steps)


async def _lease(rt: ModeRuntime, switch_id: int) -> str | None:
    """One runner per switch at a time (a re-queued job and a resumed one may overlap)."""
    if rt.redis is None:
        return "local"
    token = secrets.token_hex(8)
    ok = await rt.redis.set(f"mode:switch:{switch_id}:lease", token, nx=True, px=LEASE_MS)
    return token if ok else None


async def _release(rt: ModeRuntime, switch_id: int, token: str) -> None:
    if rt.redis is not None:
        key = f"mode:switch:{switch_id}:lease"
        if (await rt.redis.get(key)) == token.encode():
            await rt.redis.delete(key)


async def _renew(rt: ModeRuntime, switch_id: int) -> None:
    if rt.redis is not None:
        await rt.redis.pexpire(f"mode:switch:{switch_id}:lease", LEASE_MS)


async def run_switch(rt: ModeRuntime, switch_id: int) -> str:
    token = await _lease(rt, switch_id)
    if token is None:  # another run holds it; look again in a while in case that run died
        switch = await _load(rt, switch_id)
        if switch is not None and switch.status not in ("done", "superseded"):
            await enqueue(rt, switch_id, at=utcnow() + _retry_after(rt))
        return "busy"
    try:
        return await _run(rt, switch_id)
    finally:
        await _release(rt, switch_id, token)


async def _run(rt: ModeRuntime, switch_id: int) -> str:
    switch = await _load(rt, switch_id)
    if switch is None or switch.status in ("done", "superseded"):
        return switch.status if switch else "missing"
    switch = await save(rt, switch_id, status="running", runs=switch.runs + 1, error=None)
    steps: list[tuple[str, Callable[[ModeRuntime, ModeSwitch], Awaitable[ModeSwitch]]]] = [
        ("default", _default),
        ("app", _app),
        ("snapshot", _snapshot),
        ("relink", _relink),
        ("restore", _restore),
    ]
    try:
        for name, step in steps:
            fresh = await _load(rt, switch_id)
            if fresh is None or fresh.status == "superseded":
                return "superseded"
            switch = fresh
            if switch.steps.get(name, {}).get("state") in ("done", "skipped"):
                continue
            await _renew(rt, switch_id)
            switch = await step(rt, switch)
    except relink.Wait as wait:
        at = wait.retry_at or utcnow() + dt.timedelta(seconds=rt.settings.mode_batch_poll_s)
        await save(rt, switch_id, status="waiting", error=wait.reason)
        await enqueue(rt, switch_id, at=at)
        return "waiting"
    except PermanentChannelError as exc:
        await _fail(rt, switch_id, exc)
        return "failed"
    except ChannelError as exc:  # transient: LINE/FCM will likely answer later
        await save(rt, switch_id, status="waiting", error=exc.message)
        await enqueue(rt, switch_id, at=utcnow() + _retry_after(rt))
        return "waiting"
    except HubError as exc:
        await _fail(rt, switch_id, exc)
        return "failed"
    async with rt.db.transaction() as session:
        row = await session.get(ModeSwitch, switch_id)
        assert row is not None
        if row.status == "superseded":
            return "superseded"
        row.status, row.finished_at = "done", utcnow()
        audit.record(
            session,
            audit.SYSTEM,
            "mode.switch.done",
            target_type="mode_switch",
            target_id=switch_id,
            mode=row.target_mode,
            relink=_summary(row.relink),
        )
    return "done"


def _retry_after(rt: ModeRuntime) -> dt.timedelta:
    """A provider hiccup: try again shortly (10 s with the default poll interval of 2 s)."""
    return dt.timedelta(seconds=5 * rt.settings.mode_batch_poll_s)


def _summary(plan: dict[str, Any]) -> dict[str, Any]:
    keep = ("strategy", "phase", "fallback", "users_moved", "users_checked")
    return {k: plan[k] for k in keep if k in plan}


async def _fail(rt: ModeRuntime, switch_id: int, exc: HubError) -> None:
    async with rt.db.transaction() as session:
        row = await session.get(ModeSwitch, switch_id)
        if row is None:
            return
        row.status, row.error = "failed", exc.message
        audit.record(
            session,
            audit.SYSTEM,
            "mode.switch.fail",
            target_type="mode_switch",
            target_id=switch_id,
            error=exc.message,
        )
    log.error("mode switch %s failed: %s", switch_id, exc.message)


async def _default(rt: ModeRuntime, switch: ModeSwitch) -> ModeSwitch:
    entry = rt.catalog().entry(switch.target_mode)  # type: ignore[arg-type]
    ids = await relink.menu_ids(rt)
    await rt.require_line().set_default_rich_menu(ids[entry.key])
    await save(rt, switch.id, default_set_at=utcnow())
    return await _step(rt, switch, "default", state="done", menu=entry.key)


async def _app(rt: ModeRuntime, switch: ModeSwitch) -> ModeSwitch:
    if rt.fcm is None:
        return await _step(rt, switch, "app", state="skipped", note="FCM is not configured")
    data = {
        "type": "city_mode",
        "mode": switch.target_mode,
        "since": switch.requested_at.isoformat(),
        "switch_id": str(switch.id),
    }
    name = await rt.fcm.send_data_to_topic(rt.settings.fcm_mode_topic, data)
    return await _step(
        rt, switch, "app", state="done", message=name, topic=rt.settings.fcm_mode_topic
    )


async def _snapshot(rt: ModeRuntime, switch: ModeSwitch) -> ModeSwitch:
    catalog = rt.catalog()
    if switch.target_mode != "disaster" or not relink.needs_snapshot(catalog):
        return await _step(rt, switch, "snapshot", state="skipped")
    ids = await relink.menu_ids(rt)
    keys_by_id = {ids[m.key]: m.key for m in catalog.for_mode("normal")}
    state = dict(switch.steps.get("snapshot", {}), state="running")
    while state.get("state") != "done":
        state = await relink.snapshot_chunk(rt, switch.id, state, keys_by_id)
        switch = await _step(rt, switch, "snapshot", **state)
        await _renew(rt, switch.id)
    return switch


async def _relink(rt: ModeRuntime, switch: ModeSwitch) -> ModeSwitch:
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
        await _renew(rt, switch.id)
    await save(rt, switch.id, relink_done_at=utcnow())
    return await _step(rt, switch, "relink", state="done", strategy=plan["strategy"])


async def _restore(rt: ModeRuntime, switch: ModeSwitch) -> ModeSwitch:
    state = dict(switch.steps.get("restore", {}))
    if "from_switch" not in state:
        source = None
        if switch.target_mode == "normal":
            source = await relink.last_snapshot_switch(rt, switch.id)
        if source is None:
            return await _step(rt, switch, "restore", state="skipped")
        state = {"state": "running", "from_switch": source}
    ids = await relink.menu_ids(rt)
    while state.get("state") != "done":
        state = await relink.restore_chunk(rt, state, ids)
        switch = await _step(rt, switch, "restore", **state)
        await _renew(rt, switch.id)
    return switch


async def latest_switches(rt: ModeRuntime, limit: int = 10) -> list[ModeSwitch]:
    async with rt.db.sessionmaker() as session:
        return list(
            (
                await session.execute(
                    select(ModeSwitch).order_by(ModeSwitch.id.desc()).limit(limit)
                )
            ).scalars()
        )
