"""Disaster staff: the mode page (one unmistakable switch, a confirmation with a required
reason, relinking progress), JMA proposals, and emergency messages from prepared templates.

Every action is the mode area's own function (`request_switch`, `send_emergency`,
`proposals.accept` / `dismiss`), called as its JSON API calls it; the request bodies are
validated with the API's own models.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import ValidationError

from notify.compose.prepared import PreparedMessage, prepared_messages
from notify.console.pages import Viewer, back_to, console_page, see_other
from notify.errors import HubError
from notify.mode import proposals
from notify.mode.api import runtime
from notify.mode.emergency import send_emergency
from notify.mode.schemas import DismissIn, EmergencyIn, SwitchIn
from notify.mode.status import mode_status, proposal_out
from notify.mode.switch import latest_switches, request_switch
from notify.models import Role
from notify.web.api import path_id
from notify.web.errors import invalid_from_validation
from notify.web.keys import REDIS

routes = web.RouteTableDef()
LIVE_SWITCH = ("pending", "running", "waiting")


def emergency_templates() -> list[PreparedMessage]:
    return [m for m in prepared_messages() if m.priority == "emergency"]


def _emergency_body(viewer: Viewer, template: str) -> EmergencyIn:
    message = next((m for m in emergency_templates() if m.key == template), None)
    names = [p.name for p in message.params] if message else []
    params = {n: v for n in names if (v := viewer.field(f"{template}__{n}"))}
    try:
        return EmergencyIn(
            template=template,
            params=params,
            wards=viewer.fields("wards") or None,
            channels=viewer.fields("channels") or None,  # type: ignore[arg-type]
        )
    except ValidationError as exc:
        raise invalid_from_validation(exc) from exc


async def mode_view(
    request: web.Request, viewer: Viewer, *, error: HubError | None = None
) -> web.Response:
    rt = runtime(request)
    status = await mode_status(rt)
    pending = await proposals.list_proposals(rt, "pending")
    return viewer.page(
        request,
        "mode.html",
        status=error.status if error else 200,
        mode=status,
        live=status.switch is not None and status.switch.status in LIVE_SWITCH,
        proposals=[proposal_out(p) for p in pending],
        switches=await latest_switches(rt, limit=5),
        templates=emergency_templates(),
        error=error.message if error else None,
        field_errors=error.fields if error else {},
    )


@routes.get("/console/mode")
@console_page(Role.DISASTER)
async def mode_page(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    return await mode_view(request, viewer)


@routes.get("/console/mode/switch")
@console_page(Role.DISASTER)
async def confirm_switch(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    status = await mode_status(runtime(request))
    target = "normal" if status.mode == "disaster" else "disaster"
    return viewer.page(
        request, "mode_confirm.html", mode=status, target=target, templates=emergency_templates()
    )


@routes.post("/console/mode/switch")
@console_page(Role.DISASTER)
async def do_switch(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    rt = runtime(request)
    data: dict[str, Any] = {"mode": viewer.field("mode"), "reason": viewer.field("reason")}
    template = viewer.field("emergency_template")
    try:
        if template and data["mode"] == "disaster":
            data["emergency"] = _emergency_body(viewer, template)
        try:
            body = SwitchIn.model_validate(data)
        except ValidationError as exc:
            raise invalid_from_validation(exc) from exc
        asked = await request_switch(rt, body.mode, body.reason, viewer.principal)
        if body.emergency is not None:
            e = body.emergency
            await send_emergency(
                rt,
                viewer.principal,
                template=e.template,
                params=e.params,
                wards=e.wards,
                channels=e.channels,
                context={"switch_id": asked.switch.id if asked.switch else None},
            )
    except HubError as exc:
        status = await mode_status(rt)
        return viewer.page(
            request,
            "mode_confirm.html",
            status=exc.status,
            mode=status,
            target=data["mode"] if data["mode"] in ("normal", "disaster") else "disaster",
            templates=emergency_templates(),
            error=exc.message,
            field_errors=exc.fields,
        )
    return back_to("/console/mode", "mode_switched")


@routes.post("/console/mode/emergency")
@console_page(Role.DISASTER)
async def emergency(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    try:
        e = _emergency_body(viewer, viewer.field("template"))
        broadcast = await send_emergency(
            runtime(request),
            viewer.principal,
            template=e.template,
            params=e.params,
            wards=e.wards,
            channels=e.channels,
        )
    except HubError as exc:
        return await mode_view(request, viewer, error=exc)
    return back_to(f"/console/broadcasts/{broadcast.id}", "scheduled")


@routes.post("/console/mode/sync")
@console_page(Role.DISASTER)
async def sync(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    await request.app[REDIS].enqueue_job("mode_sync_menus")
    return back_to("/console/mode", "sync_queued")


@routes.post("/console/mode/proposals/{id:\\d+}/{decision:accept|dismiss}")
@console_page(Role.DISASTER)
async def decide(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    rt = runtime(request)
    proposal_id = path_id(request.match_info["id"], "提案がありません / no such proposal")
    try:
        if request.match_info["decision"] == "accept":
            await proposals.accept(
                rt,
                viewer.principal,
                proposal_id,
                reason=viewer.field("reason") or None,
                send_message=viewer.field("send_message") == "yes",
                params={},
            )
            return back_to("/console/mode", "mode_switched")
        try:
            note = DismissIn(note=viewer.field("note")).note
        except ValidationError as exc:
            raise invalid_from_validation(exc) from exc
        await proposals.dismiss(rt, viewer.principal, proposal_id, note)
    except HubError as exc:
        return await mode_view(request, viewer, error=exc)
    return see_other("/console/mode?msg=dismissed")
