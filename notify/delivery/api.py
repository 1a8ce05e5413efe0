"""HTTP API of the delivery area: progress of a sending broadcast, pause, resume, cancel."""

from __future__ import annotations

import datetime as dt

from aiohttp import web
from pydantic import BaseModel

from notify.delivery import control
from notify.errors import BROADCAST_NOT_FOUND
from notify.models import Role
from notify.web.api import ApiRoutes, Call, path_id
from notify.web.keys import DB, REDIS

routes = ApiRoutes("delivery")

READERS = [Role.PR, Role.APPROVER, Role.DISASTER, Role.ANALYST]
CONTROLLERS = [Role.PR, Role.DISASTER]


class ChannelCounts(BaseModel):
    pending: int = 0
    held: int = 0
    queued: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    cancelled: int = 0
    total: int = 0


class DeliveryProgress(BaseModel):
    broadcast_id: int
    status: str
    recipients: int  # counted so far: grows part by part until `snapshot_complete`
    snapshot_at: dt.datetime | None
    snapshot_complete: bool
    finished_at: dt.datetime | None
    channels: dict[str, ChannelCounts]
    batches: dict[str, int]


def _broadcast_id(call: Call[None, None]) -> int:
    return path_id(call.path.get("broadcast_id", ""), BROADCAST_NOT_FOUND)


@routes.get(
    "/api/broadcasts/{broadcast_id}/delivery",
    summary="Delivery progress: per-channel counts (pending, held, queued, sent, failed, …)",
    roles=READERS,
    response=DeliveryProgress,
    errors=[404],
)
async def get_progress(request: web.Request, call: Call[None, None]) -> DeliveryProgress:
    data = await control.progress(request.app[DB], _broadcast_id(call))
    return DeliveryProgress.model_validate(data)


@routes.post(
    "/api/broadcasts/{broadcast_id}/delivery/pause",
    summary="Pause a sending broadcast (batches in flight finish)",
    roles=CONTROLLERS,
    status=204,
    errors=[404, 409],
)
async def pause(request: web.Request, call: Call[None, None]) -> None:
    assert call.principal is not None
    await control.pause(request.app[DB], _broadcast_id(call), call.principal)


@routes.post(
    "/api/broadcasts/{broadcast_id}/delivery/resume",
    summary="Resume a paused broadcast",
    roles=CONTROLLERS,
    status=204,
    errors=[404, 409],
)
async def resume(request: web.Request, call: Call[None, None]) -> None:
    assert call.principal is not None
    await control.resume(request.app[DB], request.app[REDIS], _broadcast_id(call), call.principal)


@routes.post(
    "/api/broadcasts/{broadcast_id}/delivery/cancel",
    summary="Cancel a sending or paused broadcast: nothing more is sent",
    roles=CONTROLLERS,
    status=204,
    errors=[404, 409],
)
async def cancel(request: web.Request, call: Call[None, None]) -> None:
    assert call.principal is not None
    await control.cancel(request.app[DB], request.app[REDIS], _broadcast_id(call), call.principal)
