"""LINE `richmenu/batch` requests: the 3-an-hour budget, sending with a resume key, polling
`richmenu/progress/batch`, resuming a failed batch.

Each request is a `LineBatchRequest` row written *before* the call (phase `sending`), so a
crash between LINE accepting it and us recording the request id is detected on the rerun:
sending again with the same `resumeRequestKey` either resumes a failed batch or is refused
because the batch is ongoing/succeeded, which tells us it was accepted.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from channels.line_sdk import API_EXCEPTIONS, error_body
from notify.db import utcnow
from notify.errors import ChannelError, PermanentChannelError, RateLimited
from notify.mode.runtime import ModeRuntime
from notify.mode.tables import LineBatchRequest

log = logging.getLogger(__name__)

BATCHES_PER_HOUR = 3  # LINE: richmenu/batch, per channel
WINDOW = dt.timedelta(hours=1)
MAX_RESUMES = 2
SETTLED = ("succeeded", "failed")


class BatchWindowSpent(Exception):
    """No richmenu/batch request is left in LINE's hourly window (ours or LINE's 429)."""

    def __init__(self, free_at: dt.datetime) -> None:
        super().__init__(f"richmenu/batch window spent until {free_at.isoformat()}")
        self.free_at = free_at


@dataclass(frozen=True, slots=True)
class Budget:
    used: int
    left: int
    next_free_at: dt.datetime | None  # when one more request becomes available


async def budget(rt: ModeRuntime, now: dt.datetime | None = None) -> Budget:
    now = now or utcnow()
    async with rt.db.sessionmaker() as session:
        times = (
            await session.execute(
                select(LineBatchRequest.sent_at)
                .where(LineBatchRequest.sent_at > now - WINDOW)
                .where(LineBatchRequest.phase != "refused")
                .order_by(LineBatchRequest.sent_at)
            )
        ).scalars()
        sent = list(times)
    left = max(0, BATCHES_PER_HOUR - len(sent))
    free_at = None if left else sent[len(sent) - BATCHES_PER_HOUR] + WINDOW
    return Budget(len(sent), left, free_at)


async def _latest(rt: ModeRuntime, resume_key: str) -> LineBatchRequest | None:
    async with rt.db.sessionmaker() as session:
        return (
            await session.execute(
                select(LineBatchRequest)
                .where(LineBatchRequest.resume_key == resume_key)
                .order_by(LineBatchRequest.id.desc())
                .limit(1)
            )
        ).scalar_one_or_none()


async def _update(rt: ModeRuntime, row_id: int, **values: Any) -> None:
    async with rt.db.transaction() as session:
        row = await session.get(LineBatchRequest, row_id)
        if row is not None:
            for name, value in values.items():
                setattr(row, name, value)


async def _send(
    rt: ModeRuntime,
    operations: Sequence[dict[str, Any]],
    resume_key: str,
    purpose: str,
    switch_id: int | None,
) -> str:
    """One request; answers the phase it is in afterwards (ongoing / succeeded / refused)."""
    window = await budget(rt)
    if window.left == 0 and window.next_free_at is not None:
        raise BatchWindowSpent(window.next_free_at)
    async with rt.db.transaction() as session:
        row = LineBatchRequest(
            resume_key=resume_key,
            purpose=purpose,
            switch_id=switch_id,
            operations=list(operations),
            phase="sending",
        )
        session.add(row)
    try:
        request_id = await rt.require_line().rich_menu_batch(operations, resume_key)
    except RateLimited as exc:
        await _update(rt, row.id, phase="refused")
        raise BatchWindowSpent(utcnow() + WINDOW) from exc
    except PermanentChannelError as exc:
        await _update(rt, row.id, phase="refused")
        accepted = _accepted_phase(exc)
        if accepted is None:
            raise
        return accepted  # our earlier send with this key was accepted after all
    await _update(rt, row.id, request_id=request_id, phase="ongoing")
    return "ongoing"


def _accepted_phase(exc: PermanentChannelError) -> str | None:
    """LINE refuses a resume key whose batch is ongoing or succeeded: so it was accepted."""
    cause = exc.__cause__
    details = error_body(cause).get("details", []) if isinstance(cause, API_EXCEPTIONS) else []
    for detail in details if isinstance(details, list) else []:
        if isinstance(detail, dict) and detail.get("property") == "resumeRequestKey":
            text = str(detail.get("message", ""))
            for phase in ("ongoing", "succeeded"):
                if phase in text:
                    return phase
    return None


async def run_batch(
    rt: ModeRuntime,
    operations: Sequence[dict[str, Any]],
    *,
    resume_key: str,
    purpose: str,
    switch_id: int | None = None,
    deadline_s: float = 240.0,
    keepalive: Callable[[], Awaitable[None]] | None = None,
) -> str:
    """Send (or resume, or just keep polling) the batch named by `resume_key` until LINE says
    it succeeded; returns the final phase, or "ongoing" when the deadline passed first (call
    again later: nothing is sent twice). Raises BatchWindowSpent when no request is left."""
    stop_at = time.monotonic() + deadline_s
    resumes = 0
    while True:
        if keepalive is not None:
            await keepalive()
        latest = await _latest(rt, resume_key)
        if latest is None or latest.phase in ("sending", "refused", "failed"):
            if latest is not None and latest.phase == "failed":
                resumes += 1
                if resumes > MAX_RESUMES:
                    return "failed"
            phase = await _send(rt, operations, resume_key, purpose, switch_id)
            if phase == "succeeded":
                return phase
            latest = await _latest(rt, resume_key)
            if latest is None or latest.request_id is None:
                # accepted earlier but its id is lost: wait, then ask again with the key
                if time.monotonic() >= stop_at:
                    return "ongoing"
                await asyncio.sleep(rt.settings.mode_batch_poll_s)
                continue
        if latest.phase == "succeeded":
            return "succeeded"
        phase = await poll(rt, latest)
        if phase == "succeeded":
            return phase
        if phase == "ongoing":
            if time.monotonic() >= stop_at:
                return "ongoing"
            await asyncio.sleep(rt.settings.mode_batch_poll_s)


async def poll(rt: ModeRuntime, row: LineBatchRequest) -> str:
    """Ask LINE for the progress of one request and record the answer."""
    if row.request_id is None or row.phase in SETTLED:
        return row.phase
    try:
        status = await rt.require_line().rich_menu_batch_progress(row.request_id)
    except ChannelError as exc:
        log.warning("richmenu batch %s: progress unavailable: %s", row.request_id, exc)
        return "ongoing"
    if status.phase in SETTLED:
        await _update(rt, row.id, phase=status.phase, completed_at=utcnow())
    return status.phase


async def settle_others(
    rt: ModeRuntime,
    resume_key: str,
    deadline_s: float,
    keepalive: Callable[[], Awaitable[None]] | None = None,
) -> bool:
    """Wait until no other batch of ours is in flight (LINE applies batches in order of
    arrival, and a switch back must not overtake the switch it undoes). False = timed out."""
    stop_at = time.monotonic() + deadline_s
    while True:
        if keepalive is not None:
            await keepalive()
        async with rt.db.sessionmaker() as session:
            rows = list(
                (
                    await session.execute(
                        select(LineBatchRequest).where(
                            LineBatchRequest.phase == "ongoing",
                            LineBatchRequest.resume_key != resume_key,
                        )
                    )
                ).scalars()
            )
        pending = [row for row in rows if await poll(rt, row) == "ongoing"]
        if not pending:
            return True
        if time.monotonic() >= stop_at:
            return False
        await asyncio.sleep(rt.settings.mode_batch_poll_s)
