"""Menu sync against the LINE sandbox: create, reuse, replace, stale deletion, aliases, limits."""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import select

from notify.errors import ConfigError, Conflict, InvalidInput
from notify.mode import cli
from notify.mode.menus import load_menu_catalog, parse_menu_tag
from notify.mode.runtime import ModeRuntime
from notify.mode.sync import sync_menus
from notify.mode.tables import ModeMenu
from notify.settings import REPO_ROOT, Settings
from sandbox.common import SandboxControl
from sandbox.line.server import LineSandbox

KAWASAKI_MENUS = REPO_ROOT / "config" / "richmenus" / "kawasaki"


def _count(log: list[dict], method: str, path_part: str) -> int:
    return sum(1 for e in log if e["method"] == method and path_part in e["path"])


async def test_first_sync_creates_menus_images_aliases_and_default(
    rt: ModeRuntime, line_sandbox: LineSandbox, line_control: SandboxControl
) -> None:
    report = await sync_menus(rt)
    assert sorted(report.created) == ["disaster-now", "disaster-prepare", "normal"]
    store = line_sandbox.state.richmenus
    assert set(store.menus) == set(report.menus.values())
    for key, menu_id in report.menus.items():
        assert parse_menu_tag(store.menus[menu_id]["name"])[0] == key  # type: ignore[index]
        content_type, data = store.images[menu_id]
        assert content_type == "image/png" and len(data) <= 1_000_000
    assert store.aliases == {
        "kawasaki-disaster-now": report.menus["disaster-now"],
        "kawasaki-disaster-prep": report.menus["disaster-prepare"],
    }
    assert store.default == report.menus["normal"]
    async with rt.db.sessionmaker() as session:
        rows = {r.key: r.rich_menu_id for r in (await session.execute(select(ModeMenu))).scalars()}
    assert rows == report.menus
    log = await line_control.log()
    assert _count(log, "POST", "/content") == 3


async def test_second_sync_reuses_everything_and_sends_nothing_new(
    rt: ModeRuntime, line_sandbox: LineSandbox, line_control: SandboxControl
) -> None:
    first = await sync_menus(rt)
    before = len(await line_control.log())
    second = await sync_menus(rt)
    assert second.created == [] and sorted(second.reused) == sorted(first.menus)
    assert second.menus == first.menus and second.deleted == [] and second.aliases == []
    new = (await line_control.log())[before:]
    assert _count(new, "POST", "/v2/bot/richmenu") == 0  # no create, no upload, no batch
    assert len(line_sandbox.state.richmenus.menus) == 3


def _changed_catalog(tmp_path: Path, label: str) -> Path:
    folder = tmp_path / "menus"
    shutil.copytree(KAWASAKI_MENUS, folder)
    path = folder / "normal.yaml"
    path.write_text(path.read_text("utf-8").replace("イベント", label), "utf-8")
    return folder


async def test_changed_menu_is_replaced_users_moved_and_stale_deleted(
    rt: ModeRuntime, line_sandbox: LineSandbox, tmp_path: Path
) -> None:
    first = await sync_menus(rt)
    store = line_sandbox.state.richmenus
    store.link(["U" + "1" * 32], first.menus["normal"])  # a user with a per-user link
    foreign = store.create(
        {
            "name": "市の手作りメニュー",
            "size": {"width": 2500, "height": 843},
            "selected": False,
            "chatBarText": "x",
            "areas": [],
        }
    )
    changed = load_menu_catalog(_changed_catalog(tmp_path, "催し物"))
    report = await sync_menus(rt, changed)
    assert report.created == ["normal"]
    assert sorted(report.reused) == ["disaster-now", "disaster-prepare"]
    assert report.deleted == [first.menus["normal"]]
    assert first.menus["normal"] not in store.menus and foreign in store.menus  # foreign kept
    assert store.menu_of("U" + "1" * 32) == report.menus["normal"]  # moved, not dropped
    assert store.default == report.menus["normal"]


async def test_headroom_refusal_creates_nothing(rt: ModeRuntime, line_sandbox: LineSandbox) -> None:
    store = line_sandbox.state.richmenus
    for index in range(898):
        store.create(
            {
                "name": f"other {index}",
                "size": {"width": 2500, "height": 843},
                "selected": False,
                "chatBarText": "x",
                "areas": [],
            }
        )
    with pytest.raises(Conflict, match="limit"):
        await sync_menus(rt)
    assert len(store.menus) == 898
    async with rt.db.sessionmaker() as session:
        assert (await session.execute(select(ModeMenu))).first() is None


async def test_image_over_the_limits_is_refused_before_any_line_call(
    rt: ModeRuntime, line_sandbox: LineSandbox, line_control: SandboxControl, tmp_path: Path
) -> None:
    folder = tmp_path / "menus"
    shutil.copytree(KAWASAKI_MENUS, folder)
    noise = Image.frombytes("RGB", (2500, 1686), os.urandom(2500 * 1686 * 3))
    out = io.BytesIO()
    noise.save(out, "PNG", compress_level=1)
    assert len(out.getvalue()) > 1_000_000
    (folder / "big.png").write_bytes(out.getvalue())
    path = folder / "normal.yaml"
    path.write_text(
        path.read_text("utf-8").replace("image:\n", "image:\n  file: big.png\n"), "utf-8"
    )
    with pytest.raises(InvalidInput) as caught:
        await sync_menus(rt, load_menu_catalog(folder))
    assert caught.value.fields == {"image": "too large"}
    assert await line_control.log() == [] and line_sandbox.state.richmenus.menus == {}


def test_a_menu_naming_an_unknown_counterpart_is_refused(tmp_path: Path) -> None:
    folder = _changed_catalog(tmp_path, "イベント")
    path = folder / "normal.yaml"
    path.write_text(
        path.read_text("utf-8").replace("counterpart: disaster-now", "counterpart: no-such-menu"),
        "utf-8",
    )
    with pytest.raises(ConfigError, match="counterpart"):
        load_menu_catalog(folder)


async def test_cli_menus_sync_json(
    mode_settings: Settings, line_sandbox: LineSandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await asyncio.to_thread(cli.main, ["menus", "sync", "--json"], mode_settings)
    assert code == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert sorted(report["created"]) == ["disaster-now", "disaster-prepare", "normal"]
    assert set(line_sandbox.state.richmenus.menus) == set(report["menus"].values())


async def test_sync_through_the_api_as_a_job(
    hub: Any, mode_settings: Settings, line_sandbox: LineSandbox, staff_headers: dict[str, Any]
) -> None:
    from tests.mode.conftest import run_worker

    before = await (await hub.get("/api/mode", headers=staff_headers["disaster"])).json()
    assert before["menus_synced"] is False
    assert (await hub.post("/api/mode/menus/sync", headers=staff_headers["pr"])).status == 403
    response = await hub.post("/api/mode/menus/sync", headers=staff_headers["disaster"])
    assert response.status == 202
    await run_worker(mode_settings)
    menus = await (await hub.get("/api/mode/menus", headers=staff_headers["analyst"])).json()
    assert {m["key"]: m["rich_menu_id"] in line_sandbox.state.richmenus.menus for m in menus} == {
        "disaster-now": True,
        "disaster-prepare": True,
        "normal": True,
    }
    after = await (await hub.get("/api/mode", headers=staff_headers["disaster"])).json()
    assert after["menus_synced"] is True and after["mode"] == "normal"
