"""The contract check itself fails when a handler strays from what the document declares."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import BaseModel

from notify.errors import Conflict
from notify.web.api import ApiRoutes, Call
from notify.web.errors import error_middleware
from notify.web.openapi import OPENAPI_DOC, build_openapi, serve_openapi

from .contract import ContractClient, ContractViolation


class Thing(BaseModel):
    a: int


class ThingIn(BaseModel):
    a: int


routes = ApiRoutes("lies")


@routes.get("/honest", summary="declared and true", auth="public", response=Thing)
async def honest(request: web.Request, call: Call[None, None]) -> Thing:
    return Thing(a=1)


@routes.get("/extra-field", summary="adds a field", auth="public", response=Thing)
async def extra_field(request: web.Request, call: Call[None, None]) -> web.Response:
    return web.json_response({"a": 1, "secret": "x"})


@routes.get("/wrong-type", summary="wrong type", auth="public", response=Thing)
async def wrong_type(request: web.Request, call: Call[None, None]) -> web.Response:
    return web.json_response({"a": "one"})


@routes.get("/undeclared-status", summary="409 not declared", auth="public", response=Thing)
async def undeclared_status(request: web.Request, call: Call[None, None]) -> Thing:
    raise Conflict("no")


@routes.get("/undeclared-body", summary="204 with a body", auth="public")
async def undeclared_body(request: web.Request, call: Call[None, None]) -> web.Response:
    return web.Response(status=204, text="")


@routes.post("/things", summary="takes a body", auth="public", body=ThingIn, response=Thing)
async def post_thing(request: web.Request, call: Call[ThingIn, None]) -> Thing:
    return Thing(a=call.body.a)


@pytest.fixture
async def lying() -> AsyncIterator[ContractClient]:
    app = web.Application(middlewares=[error_middleware])
    routes.register(app)
    app[OPENAPI_DOC] = build_openapi([routes], title="t", version="1")
    app.router.add_get("/api/openapi.json", serve_openapi)
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()
    yield await ContractClient.load(client)
    await client.close()


async def test_honest_handler_passes(lying: ContractClient) -> None:
    assert await lying.expect(200, "GET", "/honest") == {"a": 1}
    assert await lying.expect(200, "POST", "/things", json_body={"a": 2}) == {"a": 2}


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/extra-field", "Additional properties"),
        ("/wrong-type", "is not of type 'integer'"),
        ("/undeclared-status", "answered 409"),
        ("/no-such-route", "not in the OpenAPI document"),
    ],
)
async def test_strays_are_caught(lying: ContractClient, path: str, reason: str) -> None:
    with pytest.raises(ContractViolation, match=reason):
        await lying.call("GET", path)


async def test_requests_are_checked_too(lying: ContractClient) -> None:
    with pytest.raises(ContractViolation, match="request to POST /things"):
        await lying.call("POST", "/things", json_body={"a": "x"})
    with pytest.raises(ContractViolation, match="declares no JSON request body"):
        await lying.call("GET", "/honest", json_body={"a": 1})
