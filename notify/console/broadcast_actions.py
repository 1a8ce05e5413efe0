"""Form posts that move a broadcast: submit, approve, reject, withdraw, schedule, cancel, and
pause / resume / stop while sending. Each goes back to where it came from with a notice, or
shows the core's refusal on the broadcast page."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable

from aiohttp import web

from notify.broadcasts.lifecycle import COMPOSERS, REVIEWERS
from notify.console import actions
from notify.console.broadcast_pages import ID, detail_page
from notify.console.pages import Viewer, back_to, console_page
from notify.delivery import control
from notify.errors import BROADCAST_NOT_FOUND, HubError, InvalidInput
from notify.web.api import path_id
from notify.web.keys import CITY, DB, REDIS

routes = web.RouteTableDef()
Action = Callable[[web.Request, Viewer, int, int], Awaitable[None]]


def _return_path(viewer: Viewer, broadcast_id: int) -> str:
    back = viewer.field("return_to")
    return back if back == "/console/approvals" else f"/console/broadcasts/{broadcast_id}"


def _action(path: str, *roles: str, notice: str) -> Callable[[Action], Action]:
    def register(run: Action) -> Action:
        @routes.post(ID + path)
        @console_page(*roles)
        async def handle(request: web.Request, viewer: Viewer) -> web.StreamResponse:
            broadcast_id = path_id(request.match_info["id"], BROADCAST_NOT_FOUND)
            try:
                await run(request, viewer, broadcast_id, viewer.version())
            except HubError as exc:
                return await detail_page(request, viewer, broadcast_id, error=exc)
            return back_to(_return_path(viewer, broadcast_id), notice)

        handle.__name__ = run.__name__
        return run

    return register


@_action("/submit", *COMPOSERS, notice="submitted")
async def submit(request: web.Request, viewer: Viewer, broadcast_id: int, version: int) -> None:
    await actions.submit(request, viewer.principal, broadcast_id, version)


@_action("/approve", *REVIEWERS, notice="approved")
async def approve(request: web.Request, viewer: Viewer, broadcast_id: int, version: int) -> None:
    comment = viewer.field("comment") or None
    await actions.approve(request, viewer.principal, broadcast_id, version, comment)


@_action("/reject", *REVIEWERS, notice="rejected")
async def reject(request: web.Request, viewer: Viewer, broadcast_id: int, version: int) -> None:
    comment = viewer.field("comment")
    if not comment:
        raise InvalidInput(
            "差し戻しの理由を書いてください / a comment is required to send it back",
            fields={"comment": "required"},
        )
    await actions.reject(request, viewer.principal, broadcast_id, version, comment)


@_action("/withdraw", *COMPOSERS, notice="saved")
async def withdraw(request: web.Request, viewer: Viewer, broadcast_id: int, version: int) -> None:
    await actions.withdraw(request, viewer.principal, broadcast_id, version)


def _send_time(viewer: Viewer, request: web.Request) -> dt.datetime | None:
    if viewer.field("when") == "now":
        return None
    raw = viewer.field("send_at")
    try:
        local = dt.datetime.fromisoformat(raw)
    except ValueError as exc:
        raise InvalidInput(
            "配信日時を入力してください / enter the send time", fields={"send_at": "invalid"}
        ) from exc
    return local.replace(tzinfo=request.app[CITY].tz).astimezone(dt.UTC)


@_action("/schedule", *COMPOSERS, notice="scheduled")
async def schedule(request: web.Request, viewer: Viewer, broadcast_id: int, version: int) -> None:
    send_at = _send_time(viewer, request)
    await actions.schedule(request, viewer.principal, broadcast_id, version, send_at)


@_action("/cancel", *COMPOSERS, notice="cancelled")
async def cancel(request: web.Request, viewer: Viewer, broadcast_id: int, version: int) -> None:
    reason = viewer.field("reason") or None
    await actions.cancel(request, viewer.principal, broadcast_id, version, reason)


# --- while sending: the delivery engine's own controls ----------------------------------------


@_action("/delivery/pause", *COMPOSERS, notice="paused")
async def pause(request: web.Request, viewer: Viewer, broadcast_id: int, version: int) -> None:
    await control.pause(request.app[DB], broadcast_id, viewer.principal)


@_action("/delivery/resume", *COMPOSERS, notice="resumed")
async def resume(request: web.Request, viewer: Viewer, broadcast_id: int, version: int) -> None:
    await control.resume(request.app[DB], request.app[REDIS], broadcast_id, viewer.principal)


@_action("/delivery/cancel", *COMPOSERS, notice="cancelled")
async def stop(request: web.Request, viewer: Viewer, broadcast_id: int, version: int) -> None:
    await control.cancel(request.app[DB], request.app[REDIS], broadcast_id, viewer.principal)
