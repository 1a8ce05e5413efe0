"""JMA telegrams through the real endpoint: every reference telegram, proposals, automatic
switches, cancellations, all-clears, feeds, the CLI and hostile input."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from notify.db import Database
from notify.mode import cli
from notify.mode.tables import JmaTelegramRecord, ModeProposal, ModeState, ModeSwitch
from notify.models import Broadcast
from notify.settings import Settings
from sandbox.line.server import LineSandbox
from tests.jma.conftest import derive, set_head, set_intensity, set_warning_kinds
from tests.mode.conftest import RELAY_SECRET, audit_actions, count, run_worker

Headers = dict[str, dict[str, str]]
RELAY = {"X-Hub-Jma-Secret": RELAY_SECRET, "Content-Type": "application/xml"}
VPWW53 = "official-samples/15_12_03_161130_VPWW53.xml"
VXSE51 = "official-samples/32-35_01_01_100806_VXSE51.xml"
VXSE51_CANCEL = "official-samples/32-35_10_01_220510_VXSE51.xml"
VXSE53 = "official-samples/32-35_06_03_240613_VXSE53.xml"
HEAVY_RAIN = ("33", "大雨特別警報", "発表")


async def _post(
    hub: TestClient[Any, Any], data: bytes, headers: dict[str, str] | None = None
) -> Any:
    response = await hub.post("/api/jma/telegrams", data=data, headers=headers or RELAY)
    assert response.status == 200, await response.text()
    return (await response.json())["results"]


@pytest.mark.parametrize("city", ["kawasaki", "sagamihara"])
async def test_every_reference_telegram_through_the_endpoint(
    make_client: Any, mode_settings: Settings, reference_dir: Path, city: str
) -> None:
    settings = mode_settings.model_copy(
        update={"city_config": mode_settings.city_config.with_name(f"{city}.yaml")}
    )
    hub: TestClient[Any, Any] = await make_client(settings)
    from notify.web.keys import DB

    db: Database = hub.server.app[DB]
    files = sorted((reference_dir / "jma").rglob("*.xml"))
    assert len(files) >= 13
    for path in files:
        [result] = await _post(hub, path.read_bytes())
        cancel = path.name == Path(VXSE51_CANCEL).name
        expected = ("withdraw", "nothing_to_withdraw") if cancel else ("ignore", "ignored")
        assert (result["action"], result["outcome"]) == expected, path.name
        assert not result["duplicate"] and result["reason_ja"]
    [again] = await _post(hub, files[0].read_bytes())
    assert again["duplicate"]
    assert await count(db, JmaTelegramRecord) == len(files)
    assert await count(db, ModeProposal) == 0 and await count(db, ModeSwitch) == 0
    assert await count(db, ModeState) == 0


async def test_proposal_then_cancellation_withdraws_it(
    hub: TestClient[Any, Any], hub_db: Database, staff_headers: Headers, reference_dir: Path
) -> None:
    jma = reference_dir / "jma"
    started = derive(
        jma / VXSE51, set_intensity("360", "5+"), set_head("EventID", "20220509152315")
    )
    [proposed] = await _post(hub, started)
    assert proposed["outcome"] == "proposed"
    listed = await (
        await hub.get("/api/mode/proposals?status=pending", headers=staff_headers["disaster"])
    ).json()
    assert [p["id"] for p in listed] == [proposed["proposal_id"]]
    assert listed[0]["template_key"] == "emergency_earthquake"
    assert (await hub.get("/api/mode/proposals", headers=staff_headers["pr"])).status == 403
    [withdrawn] = await _post(hub, (jma / VXSE51_CANCEL).read_bytes())
    assert withdrawn["outcome"] == "withdrew_proposals"
    async with hub_db.sessionmaker() as session:
        proposal = await session.get(ModeProposal, proposed["proposal_id"])
    assert proposal is not None and proposal.status == "withdrawn"
    accept = await hub.post(
        f"/api/mode/proposals/{proposal.id}/accept", json={}, headers=staff_headers["disaster"]
    )
    assert accept.status == 409 and await count(hub_db, ModeSwitch) == 0


async def test_proposal_accepted_switches_and_all_clear_proposes_return(
    hub: TestClient[Any, Any],
    hub_db: Database,
    mode_settings: Settings,
    staff_headers: Headers,
    reference_dir: Path,
    synced: dict[str, str],
    line_sandbox: LineSandbox,
) -> None:
    path = reference_dir / "jma" / VPWW53
    [result] = await _post(hub, derive(path, set_warning_kinds("1413000", [HEAVY_RAIN])))
    assert result["action"] == "propose" and result["outcome"] == "proposed"  # auto switch off
    response = await hub.post(
        f"/api/mode/proposals/{result['proposal_id']}/accept",
        json={"reason": "大雨特別警報を確認"},
        headers=staff_headers["disaster"],
    )
    assert response.status == 200, await response.text()
    accepted = await response.json()
    assert accepted["status"] == "accepted" and accepted["switch_id"] and accepted["broadcast_id"]
    async with hub_db.sessionmaker() as session:
        broadcast = await session.get(Broadcast, accepted["broadcast_id"])
    assert broadcast is not None and broadcast.priority == "emergency"
    assert "川崎市" in broadcast.content["ja"]["title"]  # every ward: the city's name
    await run_worker(mode_settings)
    assert line_sandbox.state.richmenus.default == synced["disaster-now"]
    lifted = derive(path, set_warning_kinds("1413000", [("33", "大雨特別警報", "解除")]))
    [cleared] = await _post(hub, lifted)
    assert cleared["outcome"] == "proposed_return"
    back = await hub.post(
        f"/api/mode/proposals/{cleared['proposal_id']}/accept",
        json={},
        headers=staff_headers["disaster"],
    )
    assert back.status == 200
    await run_worker(mode_settings)
    assert line_sandbox.state.richmenus.default == synced["normal"]
    status = await (await hub.get("/api/mode", headers=staff_headers["disaster"])).json()
    assert status["mode"] == "normal" and status["pending_proposals"] == 0


async def test_automatic_switch_and_its_cancellation(
    make_client: Any,
    mode_settings: Settings,
    reference_dir: Path,
    synced: dict[str, str],
    line_sandbox: LineSandbox,
) -> None:
    settings = mode_settings.model_copy(update={"jma_auto_switch": True})
    hub: TestClient[Any, Any] = await make_client(settings)
    from notify.web.keys import DB

    db: Database = hub.server.app[DB]
    path = reference_dir / "jma" / VXSE53
    [switched] = await _post(hub, derive(path, set_intensity("1413700", "6-")))
    assert switched["action"] == "switch" and switched["outcome"] == "switched"
    assert switched["ward_codes"] == ["141372"]
    async with db.sessionmaker() as session:
        broadcast = await session.get(Broadcast, switched["broadcast_id"])
        state = await session.get(ModeState, 1)
    assert broadcast is not None and broadcast.status == "scheduled"
    assert broadcast.segment == {"type": "wards", "codes": ["141372"]}
    assert "震度６弱" in broadcast.content["ja"]["title"]
    assert state is not None and state.mode == "disaster" and state.actor_type == "system"
    await run_worker(settings)
    assert line_sandbox.state.richmenus.default == synced["disaster-now"]
    cancel = derive(path, set_intensity("1413700", "6-"), set_head("InfoType", "取消"))
    [back] = await _post(hub, cancel)
    assert back["action"] == "withdraw" and back["outcome"] == "switched_back"
    await run_worker(settings)
    assert line_sandbox.state.richmenus.default == synced["normal"]
    async with db.sessionmaker() as session:
        broadcast = await session.get(Broadcast, switched["broadcast_id"])
    assert broadcast is not None and broadcast.status in ("cancelled", "completed")
    actions = await audit_actions(db, "mode.switch")
    assert actions.count("mode.switch") == 2


async def test_dismissing_a_proposal(
    hub: TestClient[Any, Any], staff_headers: Headers, reference_dir: Path
) -> None:
    data = derive(reference_dir / "jma" / VPWW53, set_warning_kinds("1413000", [HEAVY_RAIN]))
    [result] = await _post(hub, data)
    url = f"/api/mode/proposals/{result['proposal_id']}/dismiss"
    assert (
        await hub.post(url, json={"note": " "}, headers=staff_headers["disaster"])
    ).status == 422
    response = await hub.post(
        url, json={"note": "局地的で影響なし"}, headers=staff_headers["disaster"]
    )
    assert response.status == 200 and (await response.json())["status"] == "dismissed"
    again = await hub.post(url, json={"note": "再"}, headers=staff_headers["disaster"])
    assert again.status == 409


BOMB = b"""<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">
]><Report>&b;</Report>"""


async def test_bad_input_is_refused_and_changes_nothing(
    hub: TestClient[Any, Any], hub_db: Database, staff_headers: Headers, reference_dir: Path
) -> None:
    good = (reference_dir / "jma" / VPWW53).read_bytes()
    xml = {"Content-Type": "application/xml"}
    cases = [
        (good, xml, 401),  # neither secret nor staff
        (good, {**xml, "X-Hub-Jma-Secret": "wrong"}, 401),
        (good, {**xml, **staff_headers["pr"]}, 403),
        (good, {"X-Hub-Jma-Secret": RELAY_SECRET, "Content-Type": "text/plain"}, 415),
        (b"<Report><unclosed>", RELAY, 422),
        (b"<html><body>not a telegram</body></html>", RELAY, 422),
        (BOMB, RELAY, 422),
        (b"", RELAY, 422),
    ]
    for data, headers, expected in cases:
        response = await hub.post("/api/jma/telegrams", data=data, headers=headers)
        assert response.status == expected, (data[:40], headers, await response.text())
        assert (await response.json())["error"]["message"]
    assert await count(hub_db, JmaTelegramRecord) == 0
    assert await audit_actions(hub_db) == []
    staff = await hub.post(
        "/api/jma/telegrams", data=good, headers={**xml, **staff_headers["disaster"]}
    )
    assert staff.status == 200


async def test_feed_entries_are_fetched_from_the_allowed_host(
    make_client: Any, mode_settings: Settings, reference_dir: Path
) -> None:
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    jma = reference_dir / "jma"

    async def serve(request: web.Request) -> web.Response:
        found = next(jma.rglob(request.match_info["name"]), None)
        if found is None:
            raise web.HTTPNotFound()
        return web.Response(body=found.read_bytes(), content_type="application/xml")

    app = web.Application()
    app.router.add_get("/developer/xml/data/{name}", serve)
    server = TestServer(app)
    await server.start_server()
    prefix = str(server.make_url("/developer/xml/data/"))
    settings = mode_settings.model_copy(update={"jma_fetch_prefix": prefix})
    hub: TestClient[Any, Any] = await make_client(settings)
    names = ["20210217140808_0_VXSE51_010000.xml", "20210217140958_0_VXSE53_010000.xml"]
    feed = _feed([prefix + name for name in names])
    results = await _post(hub, feed)
    assert [r["data_type"] for r in results] == ["VXSE51", "VXSE53"]
    assert {r["outcome"] for r in results} == {"ignored"}
    foreign = _feed([prefix + names[0], "https://evil.example/x.xml"])
    response = await hub.post("/api/jma/telegrams", data=foreign, headers=RELAY)
    assert response.status == 422
    assert (await response.json())["error"]["fields"] == {
        "feed": "link outside settings.jma_fetch_prefix"
    }
    await server.close()


def _feed(links: list[str]) -> bytes:
    entries = "".join(
        f"<entry><title>地震情報</title><id>urn:uuid:{i}</id>"
        f"<updated>2021-02-17T05:10:0{i}Z</updated><author><name>気象庁</name></author>"
        f'<link type="application/xml" href="{link}"/><content type="text">x</content></entry>'
        for i, link in enumerate(links)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom" '
        f'lang="ja"><title>高頻度（随時）</title><id>urn:feed</id>'
        f"<updated>2021-02-17T05:10:00Z</updated>{entries}</feed>"
    ).encode()


async def test_cli_ingests_telegram_files(
    mode_settings: Settings, reference_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = [str(reference_dir / "jma" / VPWW53), str(reference_dir / "jma" / VXSE51_CANCEL)]
    code = await asyncio.to_thread(cli.main, ["jma", "ingest", *files, "--json"], mode_settings)
    assert code == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [(r["action"], r["outcome"]) for r in lines] == [
        ("ignore", "ignored"),
        ("withdraw", "nothing_to_withdraw"),
    ]
    from notify.db import Database as Db

    db = Db(mode_settings.effective_database_url)
    try:
        async with db.sessionmaker() as session:
            sources = set((await session.execute(select(JmaTelegramRecord.source))).scalars())
    finally:
        await db.close()
    assert sources == {"file"}


async def test_an_automatic_switch_refused_can_be_sent_again(
    make_client: Any, mode_settings: Settings, reference_dir: Path, rt: Any
) -> None:
    settings = mode_settings.model_copy(update={"jma_auto_switch": True})
    hub: TestClient[Any, Any] = await make_client(settings)
    from notify.mode.sync import sync_menus
    from notify.web.keys import DB

    db: Database = hub.server.app[DB]
    data = derive(reference_dir / "jma" / VPWW53, set_warning_kinds("1413000", [HEAVY_RAIN]))
    response = await hub.post("/api/jma/telegrams", data=data, headers=RELAY)
    assert response.status == 409  # menus not synced yet: nothing happened
    assert await count(db, JmaTelegramRecord) == 0 and await count(db, ModeState) == 0
    runtime = type(rt).build(settings, rt.city, db)
    try:
        await sync_menus(runtime)
    finally:
        await runtime.close()
    [result] = await _post(hub, data)
    assert result["outcome"] == "switched" and not result["duplicate"]
