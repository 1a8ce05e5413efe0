"""PR staff pages: compose a new broadcast (list, detail and actions land with the core)."""

from __future__ import annotations

from aiohttp import web

from notify.console.compose_form import ComposeForm
from notify.console.compose_page import compose_view, posted_form
from notify.console.pages import Viewer, console_page
from notify.models import Role

routes = web.RouteTableDef()


@routes.get("/console/broadcasts/new")
@console_page(Role.PR)
async def new_broadcast(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    return await compose_view(
        request,
        viewer,
        ComposeForm(),
        form_action="/console/broadcasts/new",
        page_title=viewer.t("新しい配信", "New broadcast"),
        with_previews=False,
        can_save=False,
    )


@routes.post("/console/broadcasts/new")
@console_page(Role.PR)
async def new_broadcast_submit(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    form = posted_form(request, viewer)
    return await compose_view(
        request,
        viewer,
        form,
        form_action="/console/broadcasts/new",
        page_title=viewer.t("新しい配信", "New broadcast"),
        with_previews=True,
        can_save=False,
    )
