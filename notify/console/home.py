"""The landing page: what each of the viewer's roles can do next."""

from __future__ import annotations

from aiohttp import web

from notify.console.pages import Viewer, console_page

routes = web.RouteTableDef()


@routes.get("/console")
@console_page()
async def home(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    return viewer.page(request, "home.html")
