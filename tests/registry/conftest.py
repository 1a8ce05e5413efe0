"""Registry fixtures: the hub with a LINE channel secret, the LINE sandbox's LINE Login, SMTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from notify.city import CityConfig, load_city
from notify.db import Database
from notify.settings import REPO_ROOT, Settings
from notify.web.keys import DB
from sandbox.line import LineSandbox
from sandbox.smtp import SmtpSandbox

LINE_SECRET = "test-channel-secret-0123456789ab"
LOGIN_CHANNEL_ID = "1654000001"


class LineLogin:
    """LINE Login of the LINE sandbox (tests/plugins/sandboxes.py), driven over HTTP.

    `issue` stands in for a resident logging in to the LIFF app; `revoke` is LINE's own
    revoke endpoint; `log` returns what the hub sent to LINE Login.
    """

    def __init__(self, sandbox: LineSandbox, session: aiohttp.ClientSession) -> None:
        self.sandbox = sandbox
        self.session = session
        self.url = sandbox.url

    async def control(self, method: str, route: str, **kwargs: Any) -> Any:
        async with self.session.request(method, self.url + "/_sandbox/" + route, **kwargs) as r:
            assert r.status == 200, await r.text()
            return await r.json()

    async def issue(
        self, user_id: str, channel_id: str = LOGIN_CHANNEL_ID, expires_in: int = 2_000
    ) -> str:
        body = {"userId": user_id, "channelId": channel_id, "expiresIn": expires_in}
        token: str = (await self.control("POST", "login/tokens", json=body))["access_token"]
        return token

    async def revoke(self, access_token: str, channel_id: str = LOGIN_CHANNEL_ID) -> None:
        form = {"access_token": access_token, "client_id": channel_id}
        async with self.session.post(self.url + "/oauth2/v2.1/revoke", data=form) as r:
            assert r.status == 200, await r.text()

    async def log(self, after: int = 0) -> list[dict[str, Any]]:
        """LINE Login requests with a sequence number above `after`, oldest first."""
        entries = (await self.control("GET", "log"))["entries"]
        return [
            e
            for e in entries
            if e["seq"] > after and (e["path"].startswith("/oauth2/") or e["path"] == "/v2/profile")
        ]

    async def last_seq(self) -> int:
        entries = (await self.control("GET", "log", params={"limit": 1}))["entries"]
        return int(entries[-1]["seq"]) if entries else 0


@pytest.fixture
def line_login(sandbox: LineSandbox, session: aiohttp.ClientSession) -> LineLogin:
    return LineLogin(sandbox, session)


@pytest.fixture
def city() -> CityConfig:
    return load_city(REPO_ROOT / "config" / "kawasaki.yaml")


@pytest.fixture
def hub_settings(
    settings: Settings, line_login: LineLogin, smtp: SmtpSandbox, tmp_path: Path
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
