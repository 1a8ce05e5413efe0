"""The switch through the real API and a burst worker against the LINE and FCM sandboxes."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from notify.db import Database
from notify.mode.runtime import ModeRuntime
from notify.mode.tables import LineBatchRequest, ModeState, ModeSwitch
from notify.settings import Settings
from sandbox.common import SandboxControl
from sandbox.fcm import FcmSandbox
from sandbox.line.server import LineSandbox
from tests.mode.conftest import add_line_residents, audit_actions, count, links, run_worker, shown


async def _switch(
    hub: TestClient[Any, Any],
    headers: dict[str, str],
    mode: str,
    reason: str = "大雨特別警報のため",
) -> dict[str, Any]:
    response = await hub.post(
        "/api/mode/switch", json={"mode": mode, "reason": reason}, headers=headers
    )
    assert response.status == 202, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def test_switch_on_and_off_moves_default_links_and_app(
    hub: TestClient[Any, Any],
    hub_db: Database,
    mode_settings: Settings,
    staff_headers: dict[str, dict[str, str]],
    synced: dict[str, str],
    rt: ModeRuntime,
    line_sandbox: LineSandbox,
    fcm_sandbox: FcmSandbox,
    http: Any,
) -> None:
    users = await add_line_residents(hub_db, 6)
    linked, unlinked = users[:3], users[3:]
    await rt.require_line().link_rich_menu(synced["normal"], linked)

    body = await _switch(hub, staff_headers["disaster"], "disaster")
    assert body["changed"] and body["queued"] and body["switch"]["status"] == "pending"
    status = await (await hub.get("/api/mode", headers=staff_headers["analyst"])).json()
    assert status["mode"] == "disaster" and status["by"] == "disaster"  # in force at once
    assert status["reason"] == "大雨特別警報のため"

    await run_worker(mode_settings)
    store = line_sandbox.state.richmenus
    assert store.default == synced["disaster-now"]
    assert await links(line_sandbox, linked) == dict.fromkeys(linked, synced["disaster-now"])
    assert await links(line_sandbox, unlinked) == dict.fromkeys(unlinked)
    assert set((await shown(line_sandbox, users)).values()) == {synced["disaster-now"]}
    fcm_log = await SandboxControl(fcm_sandbox.url, http).log(path="/v1/projects")
    sent = [e["body"]["message"] for e in fcm_log if e.get("body")]
    assert sent[-1]["topic"] == "city-mode" and sent[-1]["data"]["mode"] == "disaster"

    status = await (await hub.get("/api/mode", headers=staff_headers["disaster"])).json()
    switch = status["switch"]
    assert switch["status"] == "done" and switch["default_set_at"] and switch["relink_done_at"]
    assert switch["relink"]["strategy"] == "batch" and switch["relink"]["phase"] == "succeeded"
    assert switch["relink"]["pairs"] == [["normal", "disaster-now"]]
    assert [b["phase"] for b in switch["relink"]["batches"]] == ["succeeded"]
    assert status["batch_budget"]["used_last_hour"] == 1

    # a resident without a link taps the 備え tab: LINE links them per user itself
    store.link([unlinked[0]], synced["disaster-prepare"])
    await _switch(hub, staff_headers["admin"], "normal", "警報解除")
    await run_worker(mode_settings)
    assert store.default == synced["normal"]
    assert await links(line_sandbox, linked) == dict.fromkeys(linked, synced["normal"])
    assert set((await shown(line_sandbox, users)).values()) == {synced["normal"]}
    sent = [
        e["body"]["message"]
        for e in await SandboxControl(fcm_sandbox.url, http).log(path="/v1/projects")
        if e.get("body")
    ]
    assert sent[-1]["data"]["mode"] == "normal"
    assert await audit_actions(hub_db, "mode.") == [
        "mode.switch",
        "mode.switch.done",
        "mode.switch",
        "mode.switch.done",
    ]
    public = await (await hub.get("/api/mode/public")).json()
    assert public["mode"] == "normal"


async def test_asking_for_the_mode_in_force_changes_nothing(
    hub: TestClient[Any, Any],
    hub_db: Database,
    mode_settings: Settings,
    staff_headers: dict[str, dict[str, str]],
    synced: dict[str, str],
) -> None:
    await _switch(hub, staff_headers["disaster"], "disaster")
    await run_worker(mode_settings)
    again = await _switch(hub, staff_headers["disaster"], "disaster", "もう一度")
    assert not again["changed"] and not again["queued"] and again["switch"]["status"] == "done"
    await run_worker(mode_settings)
    assert await count(hub_db, ModeSwitch) == 1 and await count(hub_db, LineBatchRequest) == 1


async def test_refusals_change_nothing(
    hub: TestClient[Any, Any],
    hub_db: Database,
    staff_headers: dict[str, dict[str, str]],
    line_control: SandboxControl,
) -> None:
    # menus not synced yet: a clear 409
    response = await hub.post(
        "/api/mode/switch",
        json={"mode": "disaster", "reason": "訓練"},
        headers=staff_headers["disaster"],
    )
    assert response.status == 409
    assert (await response.json())["error"]["fields"] == {"menus": "not synced"}
    for who, body, expected in [
        ("pr", {"mode": "disaster", "reason": "広報から"}, 403),
        ("analyst", {"mode": "disaster", "reason": "分析から"}, 403),
        ("disaster", {"mode": "disaster", "reason": "   "}, 422),
        ("disaster", {"mode": "disaster"}, 422),
        ("disaster", {"mode": "chaos", "reason": "x"}, 422),
    ]:
        response = await hub.post("/api/mode/switch", json=body, headers=staff_headers[who])
        assert response.status == expected, (who, body, await response.text())
    response = await hub.post("/api/mode/switch", json={"mode": "disaster", "reason": "x"})
    assert response.status == 401
    assert await count(hub_db, ModeSwitch) == 0 and await count(hub_db, ModeState) == 0
    assert await audit_actions(hub_db, "mode.") == []
    assert await line_control.log() == []
    unknown = await hub.get("/api/mode/menus/no-such-menu", headers=staff_headers["disaster"])
    assert unknown.status == 404


async def test_a_switch_superseded_before_it_ran_ends_in_the_latest_mode(
    hub: TestClient[Any, Any],
    hub_db: Database,
    mode_settings: Settings,
    staff_headers: dict[str, dict[str, str]],
    synced: dict[str, str],
    line_sandbox: LineSandbox,
) -> None:
    first = await _switch(hub, staff_headers["disaster"], "disaster")
    await _switch(hub, staff_headers["disaster"], "normal", "誤操作")
    await run_worker(mode_settings)
    async with hub_db.sessionmaker() as session:
        assert (await session.get(ModeSwitch, first["switch"]["id"])).status == "superseded"  # type: ignore[union-attr]
    assert line_sandbox.state.richmenus.default == synced["normal"]
    status = await (await hub.get("/api/mode", headers=staff_headers["disaster"])).json()
    assert status["mode"] == "normal" and status["switch"]["status"] == "done"
