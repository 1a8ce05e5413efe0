"""The mode switch, requested (API, JMA, proposals, CLI); `notify.mode.runner` runs it.

`request_switch` decides in one transaction: the mode in force changes at once (status
shows it), a `ModeSwitch` row is created with its reason and actor, the audit log records it,
and a job is queued after the commit. Asking for the mode already in force is a no-op, or
resumes its switch when that did not finish: running it again finishes a crashed switch.

A newer switch supersedes an unfinished older one: the older job stops at its next step.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from notify import audit
from notify.db import utcnow
from notify.errors import Conflict
from notify.mode.menus import Mode
from notify.mode.runtime import ModeRuntime
from notify.mode.state import STATE_ID, locked_state
from notify.mode.tables import ModeMenu, ModeState, ModeSwitch
from notify.web.auth import Principal

JOB = "mode_run_switch"
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


async def latest_switches(rt: ModeRuntime, limit: int = 10) -> list[ModeSwitch]:
    """The most recent switches, newest first (the console's history)."""
    async with rt.db.sessionmaker() as session:
        query = select(ModeSwitch).order_by(ModeSwitch.id.desc()).limit(limit)
        return list((await session.execute(query)).scalars())
