"""PR staff pages: the broadcast list, compose (new and edit), one broadcast in detail."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from notify.broadcasts.lifecycle import COMPOSERS, READERS, REVIEWERS
from notify.compose.context import message_context
from notify.compose.render import render_message
from notify.console import actions
from notify.console.broadcast_views import (
    delivery_progress,
    list_broadcasts,
    load_broadcast,
    sample_ward,
)
from notify.console.compose_form import ComposeForm, form_from_broadcast
from notify.console.compose_page import compose_view, posted_form
from notify.console.i18n import STATUS_LABELS
from notify.console.pages import Viewer, back_to, console_page
from notify.console.permissions import allowed_actions, review_refusal
from notify.console.previews import build_previews
from notify.console.reach import reach_for
from notify.console.test_endpoints import own_test_endpoints
from notify.errors import BROADCAST_NOT_FOUND, HubError, NotFound
from notify.models import Role
from notify.web.api import path_id
from notify.web.keys import CITY, DB, SETTINGS

routes = web.RouteTableDef()
ID = "/console/broadcasts/{id:\\d+}"


def _id(request: web.Request) -> int:
    return path_id(request.match_info["id"], BROADCAST_NOT_FOUND)


@routes.get("/console/broadcasts")
@console_page(*READERS)
async def broadcast_list(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    status = request.query.get("status", "")
    status = status if status in STATUS_LABELS else ""
    rows, names, total = await list_broadcasts(
        request.app[DB], statuses=(status,) if status else ()
    )
    return viewer.page(
        request,
        "broadcasts.html",
        broadcasts=rows,
        names_by_id=names,
        total=total,
        status_filter=status,
        status_choices=[s for s in STATUS_LABELS if s != "rejected"],
        can_compose=viewer.has_role(*COMPOSERS),
    )


@routes.get("/console/broadcasts/new")
@console_page(*COMPOSERS)
async def new_broadcast(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    form = ComposeForm(priority="normal" if viewer.has_role(Role.PR) else "emergency")
    return await _compose(request, viewer, form, with_previews=False)


@routes.post("/console/broadcasts/new")
@console_page(*COMPOSERS)
async def new_broadcast_submit(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    form = posted_form(request, viewer)
    if viewer.field("action") == "save":
        try:
            new_id = await actions.create(
                request, viewer.principal, form.payload(request.app[CITY])
            )
        except HubError as exc:
            return await _compose(request, viewer, form, with_previews=True, error=exc)
        return back_to(f"/console/broadcasts/{new_id}", "saved")
    return await _compose(request, viewer, form, with_previews=True)


async def _compose(
    request: web.Request,
    viewer: Viewer,
    form: ComposeForm,
    *,
    with_previews: bool,
    error: HubError | None = None,
    broadcast_id: int | None = None,
    version: int | None = None,
) -> web.Response:
    editing = broadcast_id is not None
    return await compose_view(
        request,
        viewer,
        form,
        form_action=f"/console/broadcasts/{broadcast_id}/edit" if editing else request.path,
        page_title=viewer.t("配信を編集", "Edit broadcast")
        if editing
        else viewer.t("新しい配信", "New broadcast"),
        with_previews=with_previews,
        error=error,
        status=error.status if error else 200,
        version=version,
    )


@routes.get(ID + "/edit")
@console_page(*COMPOSERS)
async def edit_broadcast(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    view = await load_broadcast(request.app[DB], _id(request), request.app[CITY])
    form = form_from_broadcast(view.broadcast, request.app[CITY])
    return await _compose(
        request,
        viewer,
        form,
        with_previews=True,
        broadcast_id=view.broadcast.id,
        version=view.broadcast.version,
    )


@routes.post(ID + "/edit")
@console_page(*COMPOSERS)
async def edit_broadcast_submit(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    broadcast_id, form = _id(request), posted_form(request, viewer)
    version = viewer.version()
    if viewer.field("action") == "save":
        try:
            await actions.edit(
                request, viewer.principal, broadcast_id, version, form.payload(request.app[CITY])
            )
        except HubError as exc:
            return await _compose(
                request,
                viewer,
                form,
                with_previews=True,
                error=exc,
                broadcast_id=broadcast_id,
                version=version,
            )
        return back_to(f"/console/broadcasts/{broadcast_id}", "saved")
    return await _compose(
        request, viewer, form, with_previews=True, broadcast_id=broadcast_id, version=version
    )


async def detail_page(
    request: web.Request, viewer: Viewer, broadcast_id: int, *, error: HubError | None = None
) -> web.Response:
    city = request.app[CITY]
    view = await load_broadcast(request.app[DB], broadcast_id, city)
    b = view.broadcast
    form = form_from_broadcast(b, city)
    reach: Any = None
    if b.status in ("draft", "submitted", "approved", "scheduled"):
        try:
            reach = await reach_for(request, form)
        except HubError:
            reach = None
    previews = build_previews(
        b.content or {},
        channels=b.channels,
        city=city,
        title=b.title,
        priority=b.priority,
        send_at=b.send_at,
        ward_code=form.segment.wards[0] if form.segment.wards else None,
        broadcast_id=b.id,
    )
    send_at_local = b.send_at.astimezone(city.tz).strftime("%Y-%m-%dT%H:%M") if b.send_at else ""
    return viewer.page(
        request,
        "broadcast.html",
        status=error.status if error else 200,
        view=view,
        b=b,
        reach=reach,
        previews=previews,
        progress=await delivery_progress(request.app[DB], b),
        actions=allowed_actions(viewer.principal, b),
        review_refusal=review_refusal(viewer.principal, b)
        if b.status == "submitted" and viewer.has_role(*REVIEWERS)
        else None,
        send_at_local=send_at_local,
        test_endpoints=await own_test_endpoints(request.app[DB], viewer.staff.id)
        if viewer.has_role(*COMPOSERS)
        else [],
        sender_name=city.city.name.en if viewer.lang == "en" else city.city.name.ja,
        mail_from=request.app[SETTINGS].mail_from,
        error=error.message if error else None,
        field_errors=error.fields if error else {},
    )


@routes.get(ID)
@console_page(*READERS)
async def broadcast_detail(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    return await detail_page(request, viewer, _id(request))


EMAIL_PREVIEW_HEADERS = {
    # The rendered email, alone: no script at all, framed only by the console itself.
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "frame-ancestors 'self'; sandbox",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "SAMEORIGIN",
    "Cache-Control": "no-store",
}


@routes.get(ID + "/email/{lang:[a-z]{2}(-[A-Za-z]{2,4})?}")
@console_page(*READERS)
async def email_html(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    city = request.app[CITY]
    view = await load_broadcast(request.app[DB], _id(request), city)
    b, language = view.broadcast, request.match_info["lang"]
    if "email" not in b.channels:
        raise NotFound("この配信はメールを使いません / this broadcast has no email")
    context = message_context(
        city,
        language=language,
        ward_code=sample_ward(b.segment, city) or city.wards[0].code,
        broadcast_id=b.id,
        title=b.title,
        priority=b.priority,
        send_at=b.send_at,
    )
    message = render_message(b.content or {}, "email", language, context)
    html = getattr(message, "html", None) or ""
    return web.Response(text=html, content_type="text/html", headers=EMAIL_PREVIEW_HEADERS)
