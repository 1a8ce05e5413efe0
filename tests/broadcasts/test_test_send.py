"""Test sends go to the author's own test endpoints through the real LINE adapter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from notify.settings import Settings
from notify.staff import create_staff, issue_token
from notify.web.keys import DB
from sandbox.line import SANDBOX_TOKEN, LineSandbox

from .conftest import Api

LINE_ID = "U" + "0123456789abcdef" * 2


@pytest.fixture
async def line_sandbox(reference_dir: Path) -> AsyncIterator[LineSandbox]:
    sandbox = LineSandbox(spec_dir=reference_dir / "line-openapi")
    await sandbox.start()
    yield sandbox
    await sandbox.stop()


@pytest.fixture
async def line_api(make_client: Any, settings: Settings, line_sandbox: LineSandbox) -> Api:
    configured = settings.model_copy(
        update={
            "line_api_url": line_sandbox.url,
            "line_data_url": line_sandbox.url,
            "line_channel_access_token": SANDBOX_TOKEN,
            "smtp_host": "",  # email not configured: reported, not raised
        }
    )
    client = await make_client(configured)
    headers = {}
    async with client.server.app[DB].transaction() as session:
        for login, roles in {
            "pr": ["pr"],
            "approver": ["approver"],
            "analyst": ["analyst"],
        }.items():
            user = await create_staff(session, login, login, roles)
            headers[login] = {"Authorization": f"Bearer {await issue_token(session, user)}"}
    return Api(client, headers)


async def test_test_send_reaches_only_my_endpoints_marked_as_test(
    line_api: Api, line_sandbox: LineSandbox
) -> None:
    api = line_api
    mine = await api.ok(
        "pr",
        "POST",
        "/api/me/test-endpoints",
        {"channel": "line", "address": LINE_ID, "label": "私のLINE"},
        status=201,
    )
    await api.ok(
        "pr",
        "POST",
        "/api/me/test-endpoints",
        {"channel": "email", "address": "me@example.jp"},
        status=201,
    )
    dup = await api.call(
        "pr", "POST", "/api/me/test-endpoints", {"channel": "line", "address": LINE_ID}
    )
    assert dup.status == 409
    bad = await api.call(
        "pr", "POST", "/api/me/test-endpoints", {"channel": "line", "address": "someone"}
    )
    assert bad.status == 422 and "address" in bad.fields
    b = await api.draft(channels=["line", "email"])
    sent = await api.ok("pr", "POST", f"/api/broadcasts/{b['id']}/test-send")
    outcomes = {r["channel"]: r["outcome"] for r in sent["results"]}
    assert outcomes == {"line": "sent", "email": "error"}
    [push] = [e for e in line_sandbox.base.log.entries(path="/v2/bot/message/multicast")]
    body = push["body"] if "body" in push else push.get("json")
    assert body["to"] == [LINE_ID]
    assert body["messages"][0]["text"].startswith("【テスト】\n3歳児健診のお知らせ")
    history = await api.ok("pr", "GET", f"/api/broadcasts/{b['id']}/history")
    assert history[-1]["action"] == "broadcast.test_send"
    assert (await api.call("pr", "DELETE", f"/api/me/test-endpoints/{mine['id']}")).status == 204
    assert [e["channel"] for e in await api.ok("pr", "GET", "/api/me/test-endpoints")] == ["email"]


async def test_test_send_needs_an_endpoint_and_an_open_broadcast(line_api: Api) -> None:
    api = line_api
    b = await api.draft(channels=["line"])
    none = await api.call("pr", "POST", f"/api/broadcasts/{b['id']}/test-send")
    assert none.status == 409 and "test_endpoints" in none.fields
    assert (await api.call("analyst", "POST", f"/api/broadcasts/{b['id']}/test-send")).status == 403
    await api.ok("pr", "POST", f"/api/broadcasts/{b['id']}/cancel", {})
    late = await api.call("pr", "POST", f"/api/broadcasts/{b['id']}/test-send")
    assert late.status == 409
