"""Switches that fail, crash or run out of LINE's batch window finish when run again."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from arq import create_pool
from sqlalchemy import select

from notify.city import load_city
from notify.db import Database
from notify.mode.runner import run_switch
from notify.mode.runtime import ModeRuntime
from notify.mode.sync import sync_menus
from notify.mode.tables import LineBatchRequest, LinkSnapshot, ModeSwitch
from notify.queue_redis import queue_redis_settings
from notify.settings import REPO_ROOT, Settings
from sandbox.line.server import LineSandbox
from tests.mode.conftest import add_line_residents, links, run_worker

Headers = dict[str, dict[str, str]]


async def _switch(hub: TestClient[Any, Any], headers: Headers, mode: str) -> dict[str, Any]:
    response = await hub.post(
        "/api/mode/switch",
        json={"mode": mode, "reason": f"{mode} へ"},
        headers=headers["disaster"],
    )
    assert response.status == 202, await response.text()
    return dict(await response.json())


async def _batches(db: Database) -> list[tuple[str, str | None]]:
    async with db.sessionmaker() as session:
        rows = await session.execute(
            select(LineBatchRequest.phase, LineBatchRequest.request_id).order_by(
                LineBatchRequest.id
            )
        )
        return [(p, r) for p, r in rows]


async def test_a_failed_batch_is_resumed_with_its_key(
    hub: TestClient[Any, Any],
    hub_db: Database,
    mode_settings: Settings,
    staff_headers: Headers,
    synced: dict[str, str],
    line_sandbox: LineSandbox,
    rt: ModeRuntime,
) -> None:
    users = await add_line_residents(hub_db, 4)
    await _switch(hub, staff_headers, "disaster")
    await run_worker(mode_settings)
    store = line_sandbox.state.richmenus
    store.link(users[:2], synced["disaster-now"])
    store.link(users[2:], synced["disaster-prepare"])
    line_sandbox.state.config.fail_next_batch_after_ops = 1  # the 2nd operation never runs
    body = await _switch(hub, staff_headers, "normal")
    await run_worker(mode_settings)
    assert await links(line_sandbox, users) == dict.fromkeys(users, synced["normal"])
    phases = [p for p, _ in await _batches(hub_db)]
    assert phases == ["succeeded", "failed", "succeeded"]
    resumed = [b for b in store.batches.values() if b.resume_key]
    assert len({b.resume_key for b in resumed[1:]}) == 1 and resumed[-1].done_ops == 2
    status = await (await hub.get("/api/mode", headers=staff_headers["disaster"])).json()
    assert status["switch"]["id"] == body["switch"]["id"] and status["switch"]["status"] == "done"
    assert [b["phase"] for b in status["switch"]["relink"]["batches"]] == ["failed", "succeeded"]


async def test_a_batch_accepted_but_unanswered_is_not_sent_twice(
    hub: TestClient[Any, Any],
    hub_db: Database,
    mode_settings: Settings,
    staff_headers: Headers,
    synced: dict[str, str],
    line_sandbox: LineSandbox,
    http: Any,
) -> None:
    users = await add_line_residents(hub_db, 2)
    line_sandbox.state.richmenus.link(users, synced["normal"])
    response = await http.post(
        line_sandbox.url + "/_sandbox/faults/next",
        json={
            "count": 1,
            "kind": "error",
            "status": 500,
            "after_accept": True,
            "paths": ["/v2/bot/richmenu/batch"],
        },
    )
    assert response.status == 200
    await _switch(hub, staff_headers, "disaster")
    await run_worker(mode_settings)
    assert await links(line_sandbox, users) == dict.fromkeys(users, synced["disaster-now"])
    assert len(line_sandbox.state.richmenus.batches) == 1  # LINE ran one batch
    async with hub_db.sessionmaker() as session:
        switch = (await session.execute(select(ModeSwitch))).scalar_one()
    assert switch.status == "done" and switch.runs == 2


async def test_a_switch_killed_mid_way_is_finished_by_asking_again(
    hub: TestClient[Any, Any],
    hub_db: Database,
    mode_settings: Settings,
    staff_headers: Headers,
    synced: dict[str, str],
    line_sandbox: LineSandbox,
) -> None:
    users = await add_line_residents(hub_db, 3)
    line_sandbox.state.richmenus.link(users, synced["normal"])
    line_sandbox.state.config.batch_duration_s = 1.0  # LINE takes a while
    body = await _switch(hub, staff_headers, "disaster")
    assert mode_settings.redis_url
    redis = await create_pool(queue_redis_settings(mode_settings.redis_url))
    runtime = ModeRuntime.build(mode_settings, load_city(mode_settings.city_config), hub_db, redis)
    try:
        task = asyncio.create_task(run_switch(runtime, body["switch"]["id"]))
        for _ in range(500):  # killed while LINE works on the batch
            if line_sandbox.state.richmenus.batches:
                break
            await asyncio.sleep(0.02)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    finally:
        await runtime.close()
        await redis.aclose()
    assert line_sandbox.state.richmenus.default == synced["disaster-now"]
    again = await _switch(hub, staff_headers, "disaster")
    assert (
        not again["changed"] and again["queued"] and again["switch"]["id"] == body["switch"]["id"]
    )
    await run_worker(mode_settings)
    assert await links(line_sandbox, users) == dict.fromkeys(users, synced["disaster-now"])
    assert len(line_sandbox.state.richmenus.batches) == 1
    status = await (await hub.get("/api/mode", headers=staff_headers["disaster"])).json()
    assert status["switch"]["status"] == "done"


async def test_with_the_batch_window_spent_known_users_are_moved_in_bulk(
    hub: TestClient[Any, Any],
    hub_db: Database,
    mode_settings: Settings,
    staff_headers: Headers,
    synced: dict[str, str],
    line_sandbox: LineSandbox,
) -> None:
    users = await add_line_residents(hub_db, 5)
    store = line_sandbox.state.richmenus
    for mode in ("disaster", "normal", "disaster"):  # 3 batches: LINE's hourly allowance
        await _switch(hub, staff_headers, mode)
        await run_worker(mode_settings)
    store.link(users[:3], synced["disaster-now"])
    store.link(users[3:4], synced["disaster-prepare"])
    stranger = "U" + "f" * 32  # linked in LINE, unknown to the hub
    store.link([stranger], synced["disaster-now"])
    await _switch(hub, staff_headers, "normal")
    await run_worker(mode_settings)
    assert await links(line_sandbox, users) == {
        **dict.fromkeys(users[:4], synced["normal"]),
        users[4]: None,
    }
    assert store.menu_of(stranger) == synced["disaster-now"]  # bulk cannot reach them
    status = await (await hub.get("/api/mode", headers=staff_headers["disaster"])).json()
    relink = status["switch"]["relink"]
    assert relink["strategy"] == "bulk" and relink["fallback"] == "batch window spent"
    assert relink["users_checked"] == 5 and relink["users_moved"] == 4
    assert status["batch_budget"] == {**status["batch_budget"], "left": 0, "used_last_hour": 3}


async def test_several_normal_menus_are_restored_user_by_user(
    make_client: Any,
    mode_settings: Settings,
    line_sandbox: LineSandbox,
    tmp_path: Path,
) -> None:
    folder = tmp_path / "menus"
    shutil.copytree(REPO_ROOT / "config" / "richmenus" / "kawasaki", folder)
    extra = (folder / "normal.yaml").read_text("utf-8")
    extra = extra.replace("key: normal", "key: normal-kids").replace("entry: true\n", "")
    (folder / "normal-kids.yaml").write_text(
        extra.replace("通常メニュー", "子育てメニュー"), "utf-8"
    )
    settings = mode_settings.model_copy(update={"rich_menu_dir": folder})
    hub: TestClient[Any, Any] = await make_client(settings)
    from notify.web.keys import DB

    db: Database = hub.server.app[DB]
    headers = await _staff(db)
    runtime = ModeRuntime.build(settings, load_city(settings.city_config), db)
    try:
        ids = (await sync_menus(runtime)).menus
    finally:
        await runtime.close()
    users = await add_line_residents(db, 3)
    store = line_sandbox.state.richmenus
    store.link(users[:1], ids["normal"])
    store.link(users[1:2], ids["normal-kids"])
    await _switch(hub, headers, "disaster")
    await run_worker(settings)
    assert await links(line_sandbox, users) == {
        users[0]: ids["disaster-now"],
        users[1]: ids["disaster-now"],
        users[2]: None,
    }
    async with db.sessionmaker() as session:
        recorded = {
            r.line_user_id: r.menu_key
            for r in (await session.execute(select(LinkSnapshot))).scalars()
        }
    assert recorded == {users[0]: "normal", users[1]: "normal-kids"}
    await _switch(hub, headers, "normal")
    await run_worker(settings)
    assert await links(line_sandbox, users) == {
        users[0]: ids["normal"],
        users[1]: ids["normal-kids"],
        users[2]: None,
    }


async def _staff(db: Database) -> Headers:
    from notify.staff import create_staff, issue_token

    async with db.transaction() as session:
        user = await create_staff(session, "bousai", "防災 職員", ["disaster"])
        return {"disaster": {"Authorization": f"Bearer {await issue_token(session, user)}"}}
