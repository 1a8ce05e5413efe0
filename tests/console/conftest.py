"""A hub on 127.0.0.1 with staff who have console passwords, and a browser-like HTTP client.

The client's cookie jar treats the test server's origin as secure, as browsers treat
127.0.0.1, so the session cookie keeps its Secure flag in these tests.
"""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import CookieJar, web
from aiohttp.test_utils import TestClient, TestServer

from notify.db import Database
from notify.settings import Settings
from notify.staff import create_staff, hash_password
from notify.web.keys import DB
from tests.conftest import STAFF_ROLES

PASSWORD = "correct-horse-battery"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@functools.cache
def _password_hash() -> str:
    return hash_password(PASSWORD)  # argon2id is slow on purpose: hash once per test session


def csrf_from(html: str) -> str:
    match = _TOKEN.search(html)
    assert match, "page has no CSRF field"
    return match.group(1)


@dataclass
class Console:
    client: TestClient[Any, Any]
    app: web.Application

    @property
    def db(self) -> Database:
        return self.app[DB]

    async def get_html(self, path: str, status: int = 200) -> str:
        resp = await self.client.get(path, allow_redirects=False)
        text = await resp.text()
        assert resp.status == status, (resp.status, text[:2000])
        return text

    async def sign_in(self, login: str, password: str = PASSWORD) -> str:
        """Sign in through the form; returns the session's CSRF token from the home page."""
        token = csrf_from(await self.get_html("/console/login"))
        resp = await self.client.post(
            "/console/login",
            data={"login": login, "password": password, "csrf_token": token, "next": "/console"},
            allow_redirects=False,
        )
        assert resp.status == 303, await resp.text()
        return csrf_from(await self.get_html("/console"))

    async def post_form(
        self, path: str, data: dict[str, Any], *, status: int = 303
    ) -> tuple[int, str, str]:
        resp = await self.client.post(path, data=data, allow_redirects=False)
        text = await resp.text()
        assert resp.status == status, (resp.status, text[:3000])
        return resp.status, resp.headers.get("Location", ""), text


async def start_console(
    settings: Settings, extra_routes: web.RouteTableDef | None = None
) -> tuple[TestClient[Any, Any], web.Application]:
    from server import create_app

    app = create_app(settings)
    if extra_routes is not None:
        app.router.add_routes(extra_routes)
    server = TestServer(app)
    await server.start_server()
    jar = CookieJar(unsafe=True, treat_as_secure_origin=str(server.make_url("/")))
    client = TestClient(server, cookie_jar=jar)
    await client.start_server()
    await add_staff(app)
    return client, app


async def add_staff(app: web.Application) -> None:
    """One console user per role (all with PASSWORD), plus a second PR user."""
    async with app[DB].transaction() as session:
        for login, roles in STAFF_ROLES.items():
            user = await create_staff(session, login, f"{login} 職員", roles)
            user.password_hash = _password_hash()


@pytest.fixture
async def console(settings: Settings) -> AsyncIterator[Console]:
    client, app = await start_console(settings)
    yield Console(client, app)
    await client.close()
