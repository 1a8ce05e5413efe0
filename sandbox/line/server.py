"""The LINE Messaging API simulator: one aiohttp server for the API and the data host.

Every provider request goes through one middleware, in this order: request log, injected
faults, bearer token (401), per-endpoint rate limit (429), query and JSON body checked
against the OpenAPI documents (400 with `details`; the body is parsed once), then the
handler. Every answer carries `x-line-request-id`. LINE Login's routes (`login_routes`) are
logged and can be faulted like the rest, but carry a resident's token instead of the
channel's, so the handler checks it; LINE discloses no rate limits and no spec for them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections.abc import Awaitable, Callable, Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.web_urldispatcher import SystemRoute

from sandbox.common import (
    CONTROL_PREFIX,
    STATE_KEY,
    AppServer,
    RequestLog,
    SandboxState,
    add_control_routes,
)

from . import control_routes, insight_routes, login_routes, message_routes, richmenu_routes
from .errors import INVALID_TOKEN, MISSING_TOKEN, NOT_FOUND, RATE_LIMITED, LineApiError
from .faults import FORCED_FAULTS, ForcedFault, ForcedFaults
from .login_routes import LOGIN_TOKENS, LoginTokens
from .message_routes import BODY, REQUEST_ID
from .ratelimit import DEFAULT_LIMITS, SlidingWindowLimiter, rule_for
from .spec import LineSpec
from .state import LINE_STATE, Clock, LineConfig, LineState

SANDBOX_TOKEN = "sandbox-line-channel-access-token"
DEFAULT_SPEC_DIR = Path(__file__).resolve().parents[2].parent / "shared/reference/line-openapi"
_LOGGED_HEADERS = ("content-type", "x-line-retry-key", "user-agent", "content-length")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@lru_cache(maxsize=4)
def load_spec(spec_dir: Path) -> LineSpec:
    """Specs are read-only after loading, so tests in one process share them."""
    return LineSpec(spec_dir)


class LineSandbox:
    """Start with `await LineSandbox().start()`; `.url` is both the API and the data host."""

    def __init__(
        self,
        *,
        spec_dir: Path | None = None,
        access_tokens: Iterable[str] = (SANDBOX_TOKEN,),
        rate_limits: bool = True,
        config: LineConfig | None = None,
        log_size: int = 1000,
    ) -> None:
        self.spec = load_spec((spec_dir or DEFAULT_SPEC_DIR).resolve())
        self.access_tokens = frozenset(access_tokens)
        self.clock = Clock()
        limits = dict(DEFAULT_LIMITS, enabled=rate_limits)
        self.base = SandboxState(name="line", limits=limits, log=RequestLog(log_size))
        self._initial_config = dataclasses.replace(config or LineConfig())
        self.state = LineState(
            dataclasses.replace(self._initial_config), self.base.counters, self.clock
        )
        self.limiter = SlidingWindowLimiter(self.clock.mono)
        self.forced_faults = ForcedFaults()
        self.login = LoginTokens(self.clock)
        self.base.reset_hooks.append(self._reset)
        self.app = self._build_app()
        self._server: AppServer | None = None
        self.url = ""

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=4 * 1024 * 1024)
        app[STATE_KEY] = self.base
        app[LINE_STATE] = self.state
        app[FORCED_FAULTS] = self.forced_faults
        app[LOGIN_TOKENS] = self.login
        add_control_routes(app)
        control_routes.add_routes(app)
        message_routes.add_routes(app)
        richmenu_routes.add_routes(app)
        insight_routes.add_routes(app)
        login_routes.add_routes(app)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._server = AppServer(self.app, host=host, port=port)
        self.url = await self._server.start()
        return self.url

    async def stop(self) -> None:
        self.state.cancel_tasks()
        if self._server is not None:
            await self._server.stop()
            self._server = None

    def _reset(self) -> None:
        self.state.config = dataclasses.replace(self._initial_config)
        self.state.clear()
        self.clock.offset_s = 0.0
        self.limiter.clear()
        self.forced_faults.clear()
        self.login.clear()

    # --- the request pipeline ----------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(CONTROL_PREFIX):
            return await handler(request)
        request_id = str(uuid.uuid4())
        request[REQUEST_ID] = request_id
        raw = await request.read()
        entry = self._log(request, raw, request_id)
        fault, delay = self._draw_fault(request.path)
        if delay:
            entry["slow_s"] = delay
            await asyncio.sleep(delay)
        if fault is not None and not fault.after_accept:
            response = await self._fault_response(request, fault, entry)
        else:
            try:
                response = await self._process(request, handler, raw, entry)
            except LineApiError as exc:
                response = exc.response()
            if fault is not None:
                entry["accepted_status"] = response.status
                response = await self._fault_response(request, fault, entry)
        response.headers["x-line-request-id"] = request_id
        entry["status"] = response.status
        return response

    def _log(self, request: web.Request, raw: bytes, request_id: str) -> dict[str, Any]:
        headers = {k: request.headers[k] for k in _LOGGED_HEADERS if k in request.headers}
        if request.path in login_routes.PATHS and "Authorization" in request.headers:
            # A resident's LINE Login token (never the channel's secret): tests check it went
            # as a Bearer, as the token in the query of /oauth2/v2.1/verify is logged anyway.
            headers["authorization"] = request.headers["Authorization"]
        return self.base.log.add(
            {
                "method": request.method,
                "path": request.path,
                "query": request.query_string,
                "headers": headers,
                "body": None,
                "size": len(raw),
                "request_id": request_id,
            }
        )

    def _draw_fault(self, path: str) -> tuple[ForcedFault | None, float]:
        """A queued one-shot fault first, else a draw from the shared random faults."""
        forced = self.forced_faults.take(path)
        if forced is not None or not self.base.faults.active():
            return forced, 0.0
        kind, delay = self.base.faults.draw(path)
        if kind is None:
            return None, delay
        config = self.base.faults.config
        return ForcedFault(kind=kind, status=config.error_status, hang_s=config.hang_s), delay

    async def _fault_response(
        self, request: web.Request, fault: ForcedFault, entry: dict[str, Any]
    ) -> web.StreamResponse:
        entry["fault"] = fault.kind
        if fault.kind == "disconnect":
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError  # nothing more to answer on a dropped connection
        if fault.kind == "timeout":
            await asyncio.sleep(fault.hang_s)
            return web.json_response({"message": "Gateway Timeout"}, status=504)
        return web.json_response({"message": "Internal server error"}, status=fault.status)

    async def _process(
        self, request: web.Request, handler: Handler, raw: bytes, entry: dict[str, Any]
    ) -> web.StreamResponse:
        route = request.match_info.route
        if isinstance(route, SystemRoute):  # unknown path or method
            unmatched = request.match_info.http_exception
            raise LineApiError(unmatched.status if unmatched else 404, NOT_FOUND)
        template = route.resource.canonical if route.resource is not None else request.path
        if template in login_routes.PATHS:
            return await handler(request)  # LINE Login: user tokens, checked by its handlers
        self._authenticate(request)
        if not self.limiter.allow(
            f"{request.method} {template}", rule_for(request.method, template), self.base.limits
        ):
            raise LineApiError(429, RATE_LIMITED)
        query_details = self.spec.query_details(request.method, template, request.query)
        if query_details:
            raise LineApiError(400, f"The request has {len(query_details)} error(s)", query_details)
        if self.spec.has_body(request.method, template):
            request[BODY] = self._parsed_body(request, raw, template, entry)
        return await handler(request)

    def _authenticate(self, request: web.Request) -> None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer ") or not header[7:].strip():
            raise LineApiError(401, MISSING_TOKEN)
        if header[7:].strip() not in self.access_tokens:
            raise LineApiError(401, INVALID_TOKEN)

    def _parsed_body(
        self, request: web.Request, raw: bytes, template: str, entry: dict[str, Any]
    ) -> Any:
        if request.content_type != "application/json":
            raise LineApiError(415, "A content type not supported by the API is requested.")
        try:
            body = json.loads(raw)
        except ValueError as exc:
            line, column = getattr(exc, "lineno", 0), getattr(exc, "colno", 0)
            message = (
                f"The request body could not be parsed as JSON (line: {line}, column: {column})"
            )
            raise LineApiError(400, message) from None
        entry["body"] = body
        details = self.spec.body_details(request.method, template, body)
        if details:
            raise LineApiError(400, f"The request body has {len(details)} error(s)", details)
        return body
