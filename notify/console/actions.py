"""The console's broadcast actions: the same core calls, in the same order, as the JSON API
(`notify.broadcasts.api_drafts` / `api_review`). Rules (who may, from which state, which
version, the approval checks, the audit entries) all live in `notify.broadcasts`; this module
only sequences them for a form post."""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from notify.broadcasts import review, service
from notify.broadcasts.scheduling import enqueue_start
from notify.broadcasts.schemas import BroadcastIn, BroadcastPatch
from notify.models import Broadcast
from notify.web.auth import Principal
from notify.web.errors import invalid_from_validation
from notify.web.keys import CITY, DB, REDIS, SETTINGS


async def create(request: web.Request, actor: Principal, payload: dict[str, Any]) -> int:
    try:
        data = BroadcastIn.model_validate(payload)
    except ValidationError as exc:
        raise invalid_from_validation(exc) from exc
    async with request.app[DB].transaction() as session:
        broadcast = await service.create_broadcast(session, actor, data, request.app[CITY])
        return broadcast.id


async def edit(
    request: web.Request, actor: Principal, broadcast_id: int, version: int, payload: dict[str, Any]
) -> None:
    try:
        patch = BroadcastPatch.model_validate({**payload, "version": version})
    except ValidationError as exc:
        raise invalid_from_validation(exc) from exc
    async with request.app[DB].transaction() as session:
        broadcast = await service.load(session, broadcast_id, for_update=True)
        await service.update_broadcast(session, actor, broadcast, patch, request.app[CITY])


async def _apply(request: web.Request, broadcast_id: int, change: review.Change) -> Broadcast:
    return await review.transition(request.app[DB], broadcast_id, change)


async def _precheck(
    request: web.Request, broadcast_id: int, actor: Principal, action: str, version: int
) -> None:
    app = request.app
    await review.precheck(
        app[DB], broadcast_id, actor, action, version, city=app[CITY], settings=app[SETTINGS]
    )


async def submit(request: web.Request, actor: Principal, broadcast_id: int, version: int) -> None:
    await _precheck(request, broadcast_id, actor, "submit", version)
    await _apply(request, broadcast_id, lambda s, b: review.submit(s, actor, b, version))


async def approve(
    request: web.Request, actor: Principal, broadcast_id: int, version: int, comment: str | None
) -> None:
    await _precheck(request, broadcast_id, actor, "approve", version)
    await _apply(request, broadcast_id, lambda s, b: review.approve(s, actor, b, version, comment))


async def reject(
    request: web.Request, actor: Principal, broadcast_id: int, version: int, comment: str
) -> None:
    await _apply(request, broadcast_id, lambda s, b: review.reject(s, actor, b, version, comment))


async def withdraw(request: web.Request, actor: Principal, broadcast_id: int, version: int) -> None:
    await _apply(request, broadcast_id, lambda s, b: review.withdraw(s, actor, b, version))


async def schedule(
    request: web.Request,
    actor: Principal,
    broadcast_id: int,
    version: int,
    send_at: dt.datetime | None,
) -> None:
    broadcast = await _apply(
        request, broadcast_id, lambda s, b: review.schedule(s, actor, b, version, send_at)
    )
    assert broadcast.send_at is not None
    await enqueue_start(request.app[REDIS], broadcast.id, broadcast.version, broadcast.send_at)


async def cancel(
    request: web.Request, actor: Principal, broadcast_id: int, version: int, reason: str | None
) -> None:
    await _apply(request, broadcast_id, lambda s, b: review.cancel(s, actor, b, version, reason))
