"""A staff member's own test endpoints (where test sends go). The page lists them; adding,
removing and test sends go through the JSON API from the page's script, where the rules
(address checks, who may send, from which state) live."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select

from notify.broadcasts.lifecycle import COMPOSERS
from notify.broadcasts.tables import StaffTestEndpoint
from notify.console.pages import Viewer, console_page
from notify.db import Database
from notify.web.keys import DB

routes = web.RouteTableDef()


async def own_test_endpoints(db: Database, staff_id: int) -> list[StaffTestEndpoint]:
    async with db.sessionmaker() as session:
        rows = await session.scalars(
            select(StaffTestEndpoint)
            .where(StaffTestEndpoint.staff_id == staff_id)
            .order_by(StaffTestEndpoint.id)
        )
        return list(rows)


@routes.get("/console/me/test-endpoints")
@console_page(*COMPOSERS)
async def test_endpoints(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    rows = await own_test_endpoints(request.app[DB], viewer.staff.id)
    return viewer.page(request, "test_endpoints.html", endpoints=rows)
