"""Staff handle a resident's data request: find, export, erase; all audit-logged without PII."""

from __future__ import annotations

import json
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from notify.models import AuditEntry
from tests.conftest import count_rows
from tests.registry.conftest import hub_db
from tests.registry.test_devices import PROFILE, TOKEN, register

EMAIL = "ichiro@example.jp"


async def make_resident(hub: TestClient[Any, Any]) -> str:
    out = await register(hub, profile=PROFILE)
    resp = await hub.post("/api/email/subscribe", json={"email": EMAIL})  # someone else
    assert resp.status == 202
    return str(out["profile"]["resident_id"])


async def test_lookup_export_erase(
    hub: TestClient[Any, Any], staff_headers: dict[str, dict[str, str]]
) -> None:
    resident_id = await make_resident(hub)
    admin = staff_headers["admin"]

    resp = await hub.post(
        "/api/residents/lookup",
        json={"channel": "fcm", "address": TOKEN, "request_ref": "REQ-2026-001"},
        headers=admin,
    )
    assert resp.status == 200, await resp.text()
    assert (await resp.json()) == {"resident_id": resident_id}

    resp = await hub.get(
        f"/api/residents/{resident_id}/export",
        params={"request_ref": "REQ-2026-001"},
        headers=admin,
    )
    assert resp.status == 200
    data = await resp.json()
    assert data["resident_id"] == resident_id
    assert data["ward_code"] == "141330" and data["language"] == "en"
    assert data["children"] == [
        {"birth_year": 2016, "birth_month": 11},
        {"birth_year": 2020, "birth_month": 4},
    ]
    assert data["topics"] == ["childcare", "disaster"]
    assert data["quiet_hours"] == {"start": "22:00", "end": "07:00"}
    [endpoint] = data["endpoints"]
    assert endpoint["channel"] == "fcm" and endpoint["address"] == TOKEN
    assert endpoint["consent"] == "granted" and endpoint["consent_at"]
    assert "secret_hash" not in endpoint and "token" not in endpoint

    resp = await hub.delete(f"/api/residents/{resident_id}", headers=admin)
    assert resp.status == 204
    db = hub_db(hub)
    assert await count_rows(db, "residents") == 1  # only the email subscriber is left
    assert await count_rows(db, "endpoints") == 1
    assert await count_rows(db, "children") == 0
    assert await count_rows(db, "resident_topics") == 0
    resp = await hub.get(f"/api/residents/{resident_id}/export", headers=admin)
    assert resp.status == 404

    async with db.sessionmaker() as session:
        entries = (await session.scalars(select(AuditEntry).order_by(AuditEntry.id))).all()
    resident_entries = [e for e in entries if e.action.startswith("resident.")]
    assert [e.action for e in resident_entries] == [
        "resident.lookup",
        "resident.export",
        "resident.erase",
    ]
    erase = resident_entries[-1]
    assert erase.actor_type == "staff" and erase.target_id == resident_id
    assert erase.detail["children"] == 2 and erase.detail["endpoints"] == {"fcm": 1}
    everything = json.dumps([(e.target_id, e.detail) for e in entries], ensure_ascii=False)
    for personal in (TOKEN, EMAIL, "141330"):
        assert personal not in everything


async def test_only_admins_and_bad_input(
    hub: TestClient[Any, Any], staff_headers: dict[str, dict[str, str]]
) -> None:
    resident_id = await make_resident(hub)
    for role in ("pr", "approver", "analyst", "disaster"):
        resp = await hub.delete(f"/api/residents/{resident_id}", headers=staff_headers[role])
        assert resp.status == 403, role
    resp = await hub.get(f"/api/residents/{resident_id}/export")
    assert resp.status == 401
    admin = staff_headers["admin"]
    resp = await hub.post(
        "/api/residents/lookup",
        json={"channel": "email", "address": "x＠example.jp"},
        headers=admin,
    )
    assert resp.status == 422 and "address" in (await resp.json())["error"]["fields"]
    resp = await hub.post(
        "/api/residents/lookup",
        json={"channel": "email", "address": "nobody@example.jp"},
        headers=admin,
    )
    assert resp.status == 404
    resp = await hub.delete(
        f"/api/residents/{resident_id}", params={"request_ref": "山田さんの依頼"}, headers=admin
    )
    assert resp.status == 422 and "request_ref" in (await resp.json())["error"]["fields"]
    resp = await hub.post(
        "/api/residents/lookup",
        json={"channel": "email", "address": EMAIL.upper().replace("EXAMPLE.JP", "Example.JP")},
        headers=admin,
    )
    assert resp.status == 404  # local parts are case-sensitive (RFC 5321); domains are not
    resp = await hub.post(
        "/api/residents/lookup",
        json={"channel": "email", "address": "ichiro@EXAMPLE.jp"},
        headers=admin,
    )
    assert resp.status == 200
    assert await count_rows(hub_db(hub), "residents") == 2
