"""The JSON API accepts the console's session cookie, and then insists on the CSRF header."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from notify.settings import Settings
from notify.web.auth import require_staff
from tests.console.conftest import Console, start_console

probe = web.RouteTableDef()


@probe.post("/_probe/staff")
async def staff_probe(request: web.Request) -> web.Response:
    principal = await require_staff(request)
    return web.json_response({"login": principal.login, "via_session": principal.via_session})


@pytest.fixture
async def probed(settings: Settings) -> AsyncIterator[Console]:
    client, app = await start_console(settings, extra_routes=probe)
    yield Console(client, app)
    await client.close()


async def test_api_reads_the_session(probed: Console) -> None:
    resp = await probed.client.get("/api/me")
    assert resp.status == 401
    await probed.sign_in("approver")
    resp = await probed.client.get("/api/me")
    assert resp.status == 200
    assert (await resp.json())["roles"] == ["approver"]


async def test_unsafe_api_call_by_cookie_needs_the_csrf_header(probed: Console) -> None:
    token = await probed.sign_in("pr")
    resp = await probed.client.post("/_probe/staff")
    assert resp.status == 403
    assert (await resp.json())["error"]["code"] == "csrf_failed"
    resp = await probed.client.post("/_probe/staff", headers={"X-CSRF-Token": "x" + token[1:]})
    assert resp.status == 403
    resp = await probed.client.post("/_probe/staff", headers={"X-CSRF-Token": token})
    assert resp.status == 200
    assert await resp.json() == {"login": "pr", "via_session": True}


async def test_bearer_token_calls_need_no_csrf_header(probed: Console, staff_token: str) -> None:
    resp = await probed.client.post(
        "/_probe/staff", headers={"Authorization": f"Bearer {staff_token}"}
    )
    assert resp.status == 200
    assert (await resp.json())["via_session"] is False


@pytest.fixture
async def staff_token(probed: Console) -> str:
    from sqlalchemy import select

    from notify.models import StaffUser
    from notify.staff import issue_token

    async with probed.db.transaction() as session:
        user = (
            await session.execute(select(StaffUser).where(StaffUser.login == "pr"))
        ).scalar_one()
        return await issue_token(session, user)
