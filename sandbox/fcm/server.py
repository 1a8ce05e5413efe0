"""The FCM HTTP v1 simulator: one aiohttp app on 127.0.0.1 with an OAuth token endpoint.

Point firebase-admin / google-auth at it with a service-account file whose `token_uri` is
`{url}/token` (see `sandbox.runner.write_service_account`) and send to
`{url}/v1/projects/{project}/messages:send`. Extra control routes (besides `sandbox.common`'s):

- `POST /_sandbox/fcm/tokens` `{"unregistered": [...], "sender_id_mismatch": [...]}`
- `POST /_sandbox/fcm/topics` `{"topic": "city-mode", "tokens": [...]}` (subscribe directly)
- `GET  /_sandbox/fcm/topics` subscriber count per topic
- `POST /_sandbox/fcm/service-accounts` `{"key_id": ..., "public_key_pem": ...}`
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from sandbox.common import STATE_KEY, AppServer, SandboxState, make_sandbox_app
from sandbox.fcm.errors import fault_response
from sandbox.fcm.front import SendFront
from sandbox.fcm.oauth import JWT_BEARER, GrantError, IssuedToken, project_of, verify_assertion
from sandbox.fcm.schema import RequestValidator, load_discovery
from sandbox.fcm.send import CACHE_KEY, VALIDATOR_KEY, _VerdictCache, send_message
from sandbox.fcm.state import FCM_KEY, TOPIC_NAME, FcmWorld
from sandbox.fcm.topics import add_topic_routes

MAX_BODY = 4 * 1024 * 1024  # bytes of a request body, on either listener
DEFAULT_LIMITS: dict[str, Any] = {
    "enabled": True,
    "project_per_min": 600_000,
    "device_per_min": 240,
    "access_token_ttl_s": 3600,
}


async def token_endpoint(request: web.Request) -> web.Response:
    state, world = request.app[STATE_KEY], request.app[FCM_KEY]
    form = await request.post()
    try:
        if form.get("grant_type") != JWT_BEARER:
            raise GrantError("unsupported_grant_type", "Only the JWT bearer grant is supported.")
        assertion = form.get("assertion")
        if not isinstance(assertion, str):
            raise GrantError("invalid_request", "assertion is required.")
        claims = verify_assertion(world.oauth, assertion, str(request.url.with_query(None)))
    except GrantError as exc:
        body = {"error": exc.error, "error_description": exc.description}
        return web.json_response(body, status=400)
    access_token = "ya29.sandbox-" + secrets.token_urlsafe(32)
    ttl = int(state.limits["access_token_ttl_s"])
    world.oauth.issued[access_token] = IssuedToken(
        time.time() + ttl, claims["iss"], project_of(claims["iss"])
    )
    state.counters.add("oauth_tokens", claims["iss"])
    return web.json_response(
        {"access_token": access_token, "expires_in": ttl, "token_type": "Bearer"}
    )


async def _control_tokens(request: web.Request) -> web.Response:
    world = request.app[FCM_KEY]
    body = await request.json()
    world.unregistered.update(body.get("unregistered", []))
    world.sender_id_mismatch.update(body.get("sender_id_mismatch", []))
    return web.json_response(
        {
            "unregistered": len(world.unregistered),
            "sender_id_mismatch": len(world.sender_id_mismatch),
        }
    )


async def _control_subscribe(request: web.Request) -> web.Response:
    body = await request.json()
    topic, tokens = body.get("topic", ""), body.get("tokens", [])
    if not TOPIC_NAME.match(topic) or not isinstance(tokens, list):
        return web.json_response({"message": "topic and tokens are required"}, status=400)
    request.app[FCM_KEY].subscribe(topic, [str(t) for t in tokens])
    return await _control_topics(request)


async def _control_topics(request: web.Request) -> web.Response:
    topics = request.app[FCM_KEY].topics
    return web.json_response({"topics": {name: len(tokens) for name, tokens in topics.items()}})


async def _control_service_account(request: web.Request) -> web.Response:
    body = await request.json()
    try:
        request.app[FCM_KEY].oauth.register_key(body["key_id"], body["public_key_pem"].encode())
    except (KeyError, ValueError) as exc:
        return web.json_response({"message": f"bad key: {exc}"}, status=400)
    return web.json_response({"registered": body["key_id"]})


def create_fcm_app(
    discovery_path: Path, *, project_id: str | None = None, limits: dict[str, Any] | None = None
) -> web.Application:
    state = SandboxState(name="fcm", limits={**DEFAULT_LIMITS, **(limits or {})})
    world = FcmWorld(project_id=project_id)
    state.reset_hooks.append(world.reset)
    app = make_sandbox_app(state, fault_response, client_max_size=MAX_BODY)
    app[FCM_KEY] = world
    app[VALIDATOR_KEY] = RequestValidator(load_discovery(discovery_path))
    app[CACHE_KEY] = _VerdictCache()
    app.router.add_post("/token", token_endpoint)
    app.router.add_post("/v1/projects/{project}/messages:send", send_message)
    add_topic_routes(app)
    app.router.add_post("/_sandbox/fcm/tokens", _control_tokens)
    app.router.add_post("/_sandbox/fcm/topics", _control_subscribe)
    app.router.add_get("/_sandbox/fcm/topics", _control_topics)
    app.router.add_post("/_sandbox/fcm/service-accounts", _control_service_account)
    return app


class FcmSandbox:
    """`await FcmSandbox(path).start()` → base URL; `.state` / `.world` for in-process tests.

    The base URL is the lean front (`sandbox.fcm.front`): it answers sends itself and relays
    every other request to the aiohttp app, which listens on a port of its own (`app_url`).
    """

    def __init__(
        self,
        discovery_path: Path,
        *,
        project_id: str | None = None,
        limits: dict[str, Any] | None = None,
        port: int = 0,
    ) -> None:
        self.app = create_fcm_app(discovery_path, project_id=project_id, limits=limits)
        self.state = self.app[STATE_KEY]
        self.world = self.app[FCM_KEY]
        self._app_server = AppServer(self.app)
        self._front = SendFront(self.app, max_body=MAX_BODY)
        self._port = port
        self.url = ""
        self.app_url = ""

    async def start(self) -> str:
        self.app_url = await self._app_server.start()
        self.url = await self._front.start(self.app_url, port=self._port)
        return self.url

    async def stop(self) -> None:
        await self._front.stop()
        await self._app_server.stop()

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"
