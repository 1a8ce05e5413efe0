"""The staff console: server-rendered pages (aiohttp + jinja2) for every staff role.

`setup(app)` registers the pages, the static files and the session loader through which the
JSON API also accepts a signed-in browser (with its CSRF token on unsafe requests).
"""

from __future__ import annotations

from aiohttp import web

from notify.console import (
    approvals,
    broadcast_actions,
    broadcast_pages,
    home,
    login,
    mode_pages,
    reach,
    stats_pages,
    test_endpoints,
)
from notify.console.auth import session_principal
from notify.console.render import JINJA, build_environment
from notify.settings import REPO_ROOT
from notify.web.auth import SESSION_LOADER

STATIC_DIR = REPO_ROOT / "static"
PAGE_TABLES: tuple[web.RouteTableDef, ...] = (
    login.routes,
    home.routes,
    reach.routes,
    broadcast_pages.routes,
    broadcast_actions.routes,
    approvals.routes,
    stats_pages.routes,
    mode_pages.routes,
    test_endpoints.routes,
)


def setup(app: web.Application) -> None:
    app[JINJA] = build_environment()
    app[SESSION_LOADER] = session_principal
    for table in PAGE_TABLES:
        app.router.add_routes(table)
    app.router.add_get("/console/", _to_console)
    app.router.add_static("/static/", STATIC_DIR, name="static")


async def _to_console(request: web.Request) -> web.StreamResponse:
    return web.Response(status=308, headers={"Location": "/console"})
