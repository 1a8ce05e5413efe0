"""Broadcasts API, part 2: submit, approve, reject, withdraw, schedule, cancel.

Each call names the version it acts on (409 when stale). Submit and approve first run the
approval checks (every rendering within limits, LINE's validation) outside the transaction;
the transition itself re-reads the row under lock and checks again.
"""

from __future__ import annotations

from aiohttp import web

from notify.broadcasts import review, service
from notify.broadcasts.api_drafts import ID, broadcast_id
from notify.broadcasts.lifecycle import COMPOSERS, REVIEWERS
from notify.broadcasts.routes import routes
from notify.broadcasts.scheduling import enqueue_start
from notify.broadcasts.schemas import (
    ApproveIn,
    BroadcastOut,
    CancelIn,
    RejectIn,
    ScheduleIn,
    VersionIn,
)
from notify.web.api import Call
from notify.web.auth import Principal
from notify.web.keys import CITY, DB, REDIS, SETTINGS

ERRORS = [404, 409, 415]


async def _apply(request: web.Request, target: int, change: review.Change) -> BroadcastOut:
    broadcast = await review.transition(request.app[DB], target, change)
    return service.to_out(broadcast, request.app[CITY])


async def _precheck(
    request: web.Request, target: int, actor: Principal, action: str, version: int
) -> None:
    app = request.app
    await review.precheck(
        app[DB], target, actor, action, version, city=app[CITY], settings=app[SETTINGS]
    )


@routes.post(
    ID + "/submit",
    summary="Submit for approval (runs every check) / 承認申請",
    roles=COMPOSERS,
    body=VersionIn,
    response=BroadcastOut,
    errors=ERRORS,
)
async def submit_broadcast(request: web.Request, call: Call[VersionIn, None]) -> BroadcastOut:
    assert call.principal is not None
    actor, version = call.principal, call.body.version
    await _precheck(request, broadcast_id(call), call.principal, "submit", version)
    return await _apply(
        request, broadcast_id(call), lambda s, b: review.submit(s, actor, b, version)
    )


@routes.post(
    ID + "/approve",
    summary="Approve (another staff user than the author) / 承認",
    roles=REVIEWERS,
    body=ApproveIn,
    response=BroadcastOut,
    errors=ERRORS,
)
async def approve_broadcast(request: web.Request, call: Call[ApproveIn, None]) -> BroadcastOut:
    assert call.principal is not None
    actor, body = call.principal, call.body
    await _precheck(request, broadcast_id(call), call.principal, "approve", body.version)
    return await _apply(
        request,
        broadcast_id(call),
        lambda s, b: review.approve(s, actor, b, body.version, body.comment),
    )


@routes.post(
    ID + "/reject",
    summary="Send back to draft with a comment / 差し戻し",
    roles=REVIEWERS,
    body=RejectIn,
    response=BroadcastOut,
    errors=ERRORS,
)
async def reject_broadcast(request: web.Request, call: Call[RejectIn, None]) -> BroadcastOut:
    assert call.principal is not None
    actor, body = call.principal, call.body
    return await _apply(
        request,
        broadcast_id(call),
        lambda s, b: review.reject(s, actor, b, body.version, body.comment),
    )


@routes.post(
    ID + "/withdraw",
    summary="Back to draft for editing (voids the approval) / 取り下げ",
    roles=COMPOSERS,
    body=VersionIn,
    response=BroadcastOut,
    errors=ERRORS,
)
async def withdraw_broadcast(request: web.Request, call: Call[VersionIn, None]) -> BroadcastOut:
    assert call.principal is not None
    actor, version = call.principal, call.body.version
    return await _apply(
        request, broadcast_id(call), lambda s, b: review.withdraw(s, actor, b, version)
    )


@routes.post(
    ID + "/schedule",
    summary="Schedule or reschedule (omit send_at: now) / 配信予約",
    roles=COMPOSERS,
    body=ScheduleIn,
    response=BroadcastOut,
    errors=ERRORS,
)
async def schedule_broadcast(request: web.Request, call: Call[ScheduleIn, None]) -> BroadcastOut:
    assert call.principal is not None
    actor, body = call.principal, call.body
    out = await _apply(
        request,
        broadcast_id(call),
        lambda s, b: review.schedule(s, actor, b, body.version, body.send_at),
    )
    assert out.send_at is not None
    await enqueue_start(request.app[REDIS], out.id, out.version, out.send_at)
    return out


@routes.post(
    ID + "/cancel",
    summary="Cancel before sending starts / 配信中止",
    roles=COMPOSERS,
    body=CancelIn,
    response=BroadcastOut,
    errors=ERRORS,
)
async def cancel_broadcast(request: web.Request, call: Call[CancelIn, None]) -> BroadcastOut:
    assert call.principal is not None
    actor, body = call.principal, call.body
    return await _apply(
        request,
        broadcast_id(call),
        lambda s, b: review.cancel(s, actor, b, body.version, body.reason),
    )
