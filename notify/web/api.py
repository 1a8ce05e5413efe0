"""Declare JSON API endpoints once: routing, auth, validation, serialisation and OpenAPI.

    routes = ApiRoutes("broadcasts")

    @routes.post("/api/broadcasts", body=BroadcastIn, response=BroadcastOut, status=201,
                 auth="staff", roles=[Role.PR], summary="Create a draft")
    async def create_broadcast(request: web.Request, call: Call[BroadcastIn, None]) -> BroadcastOut:
        ...

A handler may return a pydantic model (or anything the `response` type accepts), None (204),
or an aiohttp response for non-JSON bodies (CSV, HTML, images) declared with `content_type`.
The OpenAPI document (`notify.web.openapi`) is built from these declarations, and a test
checks real requests and responses against it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from aiohttp import web
from pydantic import BaseModel, TypeAdapter, ValidationError

from notify.errors import HubError, InvalidInput, NotFound
from notify.web.auth import Principal, require_device, require_staff
from notify.web.errors import fields_from_validation, refuse_nul

AuthKind = Literal["public", "staff", "device"]
B = TypeVar("B")
Q = TypeVar("Q")


@dataclass(slots=True)
class Call(Generic[B, Q]):
    body: B
    query: Q
    principal: Principal | None
    path: dict[str, str]


Handler = Callable[[web.Request, Call[Any, Any]], Awaitable[Any]]


@dataclass(slots=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    tag: str
    summary: str
    auth: AuthKind
    roles: tuple[str, ...]
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: Any
    status: int
    content_type: str
    raw_body: str | None  # content type of a non-JSON request body (webhooks, XML, forms)
    errors: tuple[int, ...] = field(default=())

    @property
    def response_adapter(self) -> TypeAdapter[Any] | None:
        return None if self.response is None else _adapter(self.response)


_ADAPTERS: dict[Any, TypeAdapter[Any]] = {}


def _adapter(tp: Any) -> TypeAdapter[Any]:
    if tp not in _ADAPTERS:
        _ADAPTERS[tp] = TypeAdapter(tp)
    return _ADAPTERS[tp]


class ApiRoutes:
    """A module's endpoints; `server.setup_routes` registers every module's table."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.endpoints: list[Endpoint] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        auth: AuthKind = "staff",
        roles: Sequence[str] = (),
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        response: Any = None,
        status: int = 200,
        content_type: str = "application/json",
        raw_body: str | None = None,
        errors: Sequence[int] = (),
    ) -> Callable[[Handler], Handler]:
        def decorate(handler: Handler) -> Handler:
            self.endpoints.append(
                Endpoint(
                    method.upper(),
                    path,
                    handler,
                    self.tag,
                    summary,
                    auth,
                    tuple(roles),
                    body,
                    query,
                    response,
                    status,
                    content_type,
                    raw_body,
                    tuple(errors),
                )
            )
            return handler

        return decorate

    def get(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("PUT", path, **kw)

    def patch(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("DELETE", path, **kw)

    def register(self, app: web.Application) -> None:
        for endpoint in self.endpoints:
            app.router.add_route(endpoint.method, endpoint.path, _wrap(endpoint))


def _wrap(endpoint: Endpoint) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        principal: Principal | None = None
        if endpoint.auth == "staff":
            principal = await require_staff(request, endpoint.roles)
        elif endpoint.auth == "device":
            principal = await require_device(request)
        query = _parse_query(endpoint.query, request) if endpoint.query else None
        body = await _parse_body(endpoint.body, request) if endpoint.body else None
        call: Call[Any, Any] = Call(body, query, principal, dict(request.match_info))
        result = await endpoint.handler(request, call)
        if isinstance(result, web.StreamResponse):
            return result
        if result is None and endpoint.response is None:
            return web.Response(status=204 if endpoint.status == 200 else endpoint.status)
        adapter = endpoint.response_adapter
        payload = adapter.dump_python(result, mode="json") if adapter else result
        return web.json_response(payload, status=endpoint.status, dumps=_dumps)

    handle.__name__ = endpoint.handler.__name__
    return handle


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _parse_query(model: type[BaseModel], request: web.Request) -> BaseModel:
    data: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        key = info.alias or name
        values = request.query.getall(key, [])
        if not values:
            continue
        is_list = "list" in str(info.annotation) or "tuple" in str(info.annotation)
        data[key] = values if is_list else values[-1]
    refuse_nul(data, "query")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(
            "クエリが不正です / invalid query parameters", fields=fields_from_validation(exc)
        ) from exc


async def _parse_body(model: type[BaseModel], request: web.Request) -> BaseModel:
    if request.content_type != "application/json":
        raise UnsupportedMediaType(
            "Content-Type は application/json にしてください / expected JSON"
        )
    data = read_json(await request.read() or b"null")
    refuse_nul(data)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(
            "入力内容に誤りがあります / invalid input", fields=fields_from_validation(exc)
        ) from exc


MAX_ID = 2**63 - 1  # ids are BIGINT: a larger number names nothing


def path_id(raw: str, not_found: str) -> int:
    """The numeric id in a path segment. Anything else (letters, other scripts' digits, a
    number past BIGINT, which the database would refuse with an error) names nothing: 404."""
    if raw.isascii() and raw.isdigit() and len(raw) <= 19 and int(raw) <= MAX_ID:
        return int(raw)
    raise NotFound(not_found)


class UnsupportedMediaType(HubError):
    status = 415
    code = "unsupported_media_type"


class BadJson(HubError):
    status = 400
    code = "malformed_json"


def read_json(raw: bytes) -> Any:
    """JSON from outside: BadJson (400) for anything else, including arrays nested deeper
    than the parser's recursion limit (json.loads raises RecursionError for those)."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise BadJson(f"JSON を読めません / malformed JSON: {str(exc)[:200]}") from exc


def all_endpoints(tables: Sequence[ApiRoutes]) -> list[Endpoint]:
    return [endpoint for table in tables for endpoint in table.endpoints]
