"""Health, the OpenAPI document, and the caller's own staff identity."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel
from sqlalchemy import text

from notify.web.api import ApiRoutes, Call
from notify.web.keys import CITY, DB, REDIS
from notify.web.openapi import OPENAPI_DOC

routes = ApiRoutes("system")


class Health(BaseModel):
    status: str
    database: str
    redis: str
    city: str


class Me(BaseModel):
    staff_id: int
    login: str
    roles: list[str]


@routes.get("/healthz", summary="Liveness and dependencies", auth="public", response=Health)
async def health(request: web.Request, call: Call[None, None]) -> Health:
    db_state = redis_state = "ok"
    try:
        async with request.app[DB].engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # report, do not crash: this is the health endpoint
        db_state = f"error: {type(exc).__name__}"
    try:
        await request.app[REDIS].ping()
    except Exception as exc:
        redis_state = f"error: {type(exc).__name__}"
    status = "ok" if db_state == redis_state == "ok" else "degraded"
    return Health(
        status=status, database=db_state, redis=redis_state, city=request.app[CITY].city.name.ja
    )


@routes.get(
    "/api/openapi.json",
    summary="This API's OpenAPI document",
    auth="public",
    response=dict[str, Any],  # declared, so the document does not promise a 204
    content_type="application/json",
)
async def openapi_document(request: web.Request, call: Call[None, None]) -> web.Response:
    return web.json_response(request.app[OPENAPI_DOC])


@routes.get("/api/me", summary="The calling staff user", auth="staff", response=Me)
async def me(request: web.Request, call: Call[None, None]) -> Me:
    assert call.principal is not None and call.principal.staff_id is not None
    return Me(
        staff_id=call.principal.staff_id,
        login=call.principal.login or "",
        roles=sorted(call.principal.roles),
    )
