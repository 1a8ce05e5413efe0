"""Registry fixtures: the hub with a LINE channel secret, a fake LINE Login server, SMTP sandbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from notify.city import CityConfig, load_city
from notify.db import Database
from notify.settings import REPO_ROOT, Settings
from notify.web.keys import DB
from sandbox.smtp import SmtpSandbox

LINE_SECRET = "test-channel-secret-0123456789ab"
LOGIN_CHANNEL_ID = "1654000001"


@dataclass
class LineLoginFake:
    """LINE Login's token check as a real server: /oauth2/v2.1/verify and /v2/profile.

    `tokens` maps an access token to (client_id, user_id, expires_in); `status` forces an
    answer (e.g. 500) for every request; `log` keeps (path, query, authorization).
    """

    tokens: dict[str, tuple[str, str, int]] = field(default_factory=dict)
    status: int | None = None
    log: list[tuple[str, dict[str, str], str]] = field(default_factory=list)
    url: str = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/oauth2/v2.1/verify", self._verify)
        app.router.add_get("/v2/profile", self._profile)
        return app

    def _record(self, request: web.Request) -> web.Response | None:
        self.log.append(
            (request.path, dict(request.query), request.headers.get("Authorization", ""))
        )
        if self.status is not None:
            return web.json_response({"message": "forced"}, status=self.status)
        return None

    async def _verify(self, request: web.Request) -> web.Response:
        forced = self._record(request)
        if forced:
            return forced
        entry = self.tokens.get(request.query.get("access_token", ""))
        if entry is None or entry[2] <= 0:
            return web.json_response(
                {"error": "invalid_request", "error_description": "access token expired"},
                status=400,
            )
        client_id, _, expires_in = entry
        return web.json_response(
            {"scope": "profile openid", "client_id": client_id, "expires_in": expires_in}
        )

    async def _profile(self, request: web.Request) -> web.Response:
        forced = self._record(request)
        if forced:
            return forced
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        entry = self.tokens.get(token)
        if entry is None:
            return web.json_response({"message": "invalid token"}, status=401)
        return web.json_response({"userId": entry[1], "displayName": "テスト"})


@pytest.fixture
async def line_login() -> AsyncIterator[LineLoginFake]:
    fake = LineLoginFake()
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    fake.url = str(server.make_url("")).rstrip("/")
    yield fake
    await server.close()


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpSandbox]:
    sandbox = SmtpSandbox()
    await sandbox.start()
    yield sandbox
    await sandbox.stop()


@pytest.fixture
def city() -> CityConfig:
    return load_city(REPO_ROOT / "config" / "kawasaki.yaml")


@pytest.fixture
def hub_settings(
    settings: Settings, line_login: LineLoginFake, smtp: SmtpSandbox, tmp_path: Path
) -> Settings:
    return settings.model_copy(
        update={
            "line_channel_secret": LINE_SECRET,
            "line_login_api_url": line_login.url,
            "line_login_channel_id": LOGIN_CHANNEL_ID,
            "smtp_host": smtp.host,
            "smtp_port": smtp.port,
        }
    )


@pytest.fixture
async def hub(make_client: Any, hub_settings: Settings) -> TestClient[Any, Any]:
    client: TestClient[Any, Any] = await make_client(hub_settings)
    return client


def hub_db(client: TestClient[Any, Any]) -> Database:
    return client.server.app[DB]
