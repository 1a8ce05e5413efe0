"""Emergency broadcasts from prepared messages: created through the broadcasts area, scheduled
at once, delivered by the real engine ignoring quiet hours and overridable opt-outs."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from notify.db import Database
from notify.models import Broadcast, Resident
from notify.settings import Settings
from sandbox.common import SandboxControl
from tests.mode.conftest import add_line_residents, audit_actions, count, run_worker

Headers = dict[str, dict[str, str]]
ORDER = {
    "template": "evacuation_order",
    "params": {"area": "川崎区 大師地区"},
    "wards": ["141313"],
    "channels": ["line"],
}


async def test_emergency_goes_out_to_the_ward_despite_quiet_hours_and_opt_out(
    hub: TestClient[Any, Any],
    hub_db: Database,
    mode_settings: Settings,
    staff_headers: Headers,
    line_control: SandboxControl,
) -> None:
    inside = await add_line_residents(hub_db, 2, wards=["141313"])
    outside = await add_line_residents(hub_db, 1, wards=["141321"])
    async with hub_db.transaction() as session:  # asleep all day, no disaster topic chosen
        for resident in (await session.execute(select(Resident))).scalars():
            resident.quiet_start_min, resident.quiet_end_min = 0, 1439
    response = await hub.post("/api/mode/emergency", json=ORDER, headers=staff_headers["disaster"])
    assert response.status == 201, await response.text()
    created = await response.json()
    assert created["status"] == "scheduled" and created["priority"] == "emergency"
    async with hub_db.sessionmaker() as session:
        broadcast = await session.get(Broadcast, created["broadcast_id"])
    assert broadcast is not None and broadcast.segment == {"type": "wards", "codes": ["141313"]}
    assert broadcast.topic == "disaster" and "川崎区 大師地区" in broadcast.content["ja"]["title"]
    assert await audit_actions(hub_db, "broadcast.") == [
        "broadcast.create",
        "broadcast.from_prepared",
        "broadcast.emergency_dispatch",
    ]
    await run_worker(mode_settings)
    sent = [
        e["body"]
        for e in await line_control.log(path="/v2/bot/message/multicast")
        if e.get("status") == 200
    ]
    recipients = {user for body in sent for user in body["to"]}
    assert recipients == set(inside) and not recipients & set(outside)
    assert "避難指示" in sent[0]["messages"][0]["text"]


async def test_switch_with_an_emergency_message(
    hub: TestClient[Any, Any], hub_db: Database, staff_headers: Headers, synced: dict[str, str]
) -> None:
    response = await hub.post(
        "/api/mode/switch",
        json={"mode": "disaster", "reason": "避難指示発令", "emergency": ORDER},
        headers=staff_headers["disaster"],
    )
    assert response.status == 202, await response.text()
    body = await response.json()
    assert body["changed"] and body["broadcast_id"]
    async with hub_db.sessionmaker() as session:
        broadcast = await session.get(Broadcast, body["broadcast_id"])
    assert broadcast is not None and broadcast.status == "scheduled"


async def test_refused_emergencies_create_nothing(
    hub: TestClient[Any, Any], hub_db: Database, staff_headers: Headers
) -> None:
    cases = [
        ("pr", ORDER, 403),
        ("analyst", ORDER, 403),
        ("disaster", {**ORDER, "template": "infant_checkup"}, 422),  # not an emergency message
        ("disaster", {**ORDER, "wards": ["999999"]}, 422),
        ("disaster", {**ORDER, "template": "no_such_message"}, 404),
        ("disaster", {**ORDER, "params": {}}, 422),  # $area is required... but filled from wards
    ]
    for who, body, expected in cases[:-1]:
        response = await hub.post("/api/mode/emergency", json=body, headers=staff_headers[who])
        assert response.status == expected, (who, body, await response.text())
    assert await count(hub_db, Broadcast) == 0
    assert await audit_actions(hub_db, "broadcast.") == []
    # without `area` the ward names fill it in
    who, body, _ = cases[-1]
    response = await hub.post("/api/mode/emergency", json=body, headers=staff_headers[who])
    assert response.status == 201
    async with hub_db.sessionmaker() as session:
        broadcast = (await session.execute(select(Broadcast))).scalar_one()
    assert "川崎区" in broadcast.content["ja"]["title"]
