"""Running a switch (the arq job `mode_run_switch`): its steps in order, one runner at a time.

A step waiting for LINE (batch progress, the 3/hour window) or hit by a provider hiccup puts
the switch in `waiting` and queues the job again; a permanent error marks it `failed`
(asking for the same mode again resumes it). Every run starts from the persisted steps.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from notify import audit
from notify.db import utcnow
from notify.errors import ChannelError, HubError, PermanentChannelError
from notify.mode import lease, relink, steps
from notify.mode.runtime import ModeRuntime
from notify.mode.steps import load, save
from notify.mode.switch import enqueue
from notify.mode.tables import ModeSwitch

log = logging.getLogger(__name__)
Step = Callable[[ModeRuntime, ModeSwitch], Awaitable[ModeSwitch]]
STEPS: list[tuple[str, Step]] = [
    ("default", steps.set_default),
    ("app", steps.signal_app),
    ("snapshot", steps.take_snapshot),
    ("relink", steps.relink_users),
    ("restore", steps.restore_links),
]


async def run_switch(rt: ModeRuntime, switch_id: int) -> str:
    token = await lease.take(rt, switch_id)
    if token is None:  # another run holds it; look again in a while in case that run died
        switch = await load(rt, switch_id)
        if switch is not None and switch.status not in ("done", "superseded"):
            await enqueue(rt, switch_id, at=utcnow() + _retry_after(rt))
        return "busy"
    try:
        return await _run(rt, switch_id)
    finally:
        await lease.release(rt, switch_id, token)


async def _run(rt: ModeRuntime, switch_id: int) -> str:
    switch = await load(rt, switch_id)
    if switch is None or switch.status in ("done", "superseded"):
        return switch.status if switch else "missing"
    switch = await save(rt, switch_id, status="running", runs=switch.runs + 1, error=None)
    try:
        for name, step in STEPS:
            fresh = await load(rt, switch_id)
            if fresh is None or fresh.status == "superseded":
                return "superseded"
            switch = fresh
            if switch.steps.get(name, {}).get("state") in ("done", "skipped"):
                continue
            await lease.renew(rt, switch_id)
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
