"""App API: register a device, refresh its token, set the profile, leave; bad input never writes."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from notify.models import Child, Endpoint, Resident, ResidentTopic
from notify.web.auth import hash_token
from tests.conftest import count_rows
from tests.registry.conftest import hub_db

TOKEN = "fcm-token-aaaaaaaaaaaaaaaaaaaaaaaaaaaa:APA91bHun4MxP5egoKMwt2KZFBaFUH-1RYqx"
PROFILE = {
    "ward_code": "141330",
    "language": "en",
    "children": [{"birth_year": 2020, "birth_month": 4}, {"birth_year": 2016, "birth_month": 11}],
    "topics": ["disaster", "childcare", "disaster"],
    "quiet_hours": {"start": "22:00", "end": "07:00"},
    "preferred_channel": "fcm",
}


async def register(hub: TestClient[Any, Any], **body: Any) -> dict[str, Any]:
    payload = {"fcm_token": TOKEN, "platform": "android", **body}
    resp = await hub.post("/api/app/devices", json=payload)
    assert resp.status == 201, await resp.text()
    return dict(await resp.json())


def auth(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


async def test_register_returns_credential_and_stores_only_its_hash(
    hub: TestClient[Any, Any],
) -> None:
    out = await register(hub, profile=PROFILE)
    credential = out["credential"]
    endpoint_id, secret = credential.removeprefix("dev_").split("_", 1)
    assert int(endpoint_id) == out["device_id"]
    assert out["profile"]["ward_code"] == "141330"
    assert out["profile"]["topics"] == ["childcare", "disaster"]
    assert out["profile"]["children"] == [
        {"birth_year": 2016, "birth_month": 11},
        {"birth_year": 2020, "birth_month": 4},
    ]
    assert out["profile"]["quiet_hours"] == {"start": "22:00", "end": "07:00"}
    async with hub_db(hub).sessionmaker() as session:
        endpoint = await session.get(Endpoint, out["device_id"])
        assert endpoint is not None
        assert endpoint.channel == "fcm" and endpoint.address == TOKEN
        assert endpoint.platform == "android"
        assert endpoint.consent == "granted" and endpoint.consent_at is not None
        assert endpoint.secret_hash == hash_token(secret) and secret not in endpoint.secret_hash
        assert endpoint.token and len(endpoint.token) == 16
        resident = await session.get(Resident, endpoint.resident_id)
        assert resident is not None
        assert (resident.language, resident.quiet_start_min, resident.quiet_end_min) == (
            "en",
            22 * 60,
            7 * 60,
        )
        indexes = sorted((await session.scalars(select(Child.birth_month_index))).all())
        assert indexes == [2016 * 12 + 10, 2020 * 12 + 3]

    resp = await hub.get("/api/app/profile", headers=auth(credential))
    assert resp.status == 200
    assert (await resp.json())["resident_id"] == out["profile"]["resident_id"]


async def test_profile_update_keeps_fields_not_given_and_null_clears(
    hub: TestClient[Any, Any],
) -> None:
    out = await register(hub, profile=PROFILE)
    headers = auth(out["credential"])
    resp = await hub.put(
        "/api/app/profile", json={"topics": ["garbage"], "quiet_hours": None}, headers=headers
    )
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["topics"] == ["garbage"]
    assert body["quiet_hours"] is None
    assert body["ward_code"] == "141330" and body["language"] == "en"
    assert len(body["children"]) == 2
    assert await count_rows(hub_db(hub), "resident_topics") == 1


async def test_bad_profile_gets_field_messages_and_writes_nothing(
    hub: TestClient[Any, Any],
) -> None:
    bad = {
        "ward_code": "131016",  # Tokyo's Chiyoda-ku: a real code, not Kawasaki's
        "language": "fr",
        "topics": ["disaster", "lottery"],
        "children": [{"birth_year": 2020, "birth_month": 13}],
    }
    resp = await hub.post(
        "/api/app/devices", json={"fcm_token": TOKEN, "platform": "android", "profile": bad}
    )
    assert resp.status == 422
    error = (await resp.json())["error"]
    assert error["code"] == "invalid_input"
    assert "profile.children.0.birth_month" in error["fields"]

    bad.pop("children")
    resp = await hub.post(
        "/api/app/devices", json={"fcm_token": TOKEN, "platform": "android", "profile": bad}
    )
    assert resp.status == 422
    fields = (await resp.json())["error"]["fields"]
    assert set(fields) == {"ward_code", "language", "topics.1"}
    assert "区" in fields["ward_code"]
    for table in ("residents", "endpoints", "children", "resident_topics"):
        assert await count_rows(hub_db(hub), table) == 0


async def test_shape_errors_are_4xx_in_the_json_shape(hub: TestClient[Any, Any]) -> None:
    cases: list[tuple[Any, int, str]] = [
        ({"fcm_token": TOKEN, "platform": "symbian"}, 422, "platform"),
        ({"fcm_token": "x", "platform": "ios"}, 422, "fcm_token"),
        ({"fcm_token": TOKEN, "platform": "ios", "admin": True}, 422, "admin"),
        (
            {"fcm_token": TOKEN, "platform": "ios", "profile": {"quiet_hours": {"start": "25:00"}}},
            422,
            "profile.quiet_hours.start",
        ),
        (
            {
                "fcm_token": TOKEN,
                "platform": "ios",
                "profile": {"children": [{"birth_year": 2999, "birth_month": 1}]},
            },
            422,
            "profile.children.0.birth_year",
        ),
        (
            {
                "fcm_token": TOKEN,
                "platform": "ios",
                "profile": {"children": [{"birth_year": 2090, "birth_month": 1}]},
            },
            422,
            "profile.children.0",
        ),
    ]
    for body, status, field in cases:
        resp = await hub.post("/api/app/devices", json=body)
        assert resp.status == status, (body, await resp.text())
        assert field in (await resp.json())["error"]["fields"], body
    resp = await hub.post(
        "/api/app/devices", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "malformed_json"
    resp = await hub.post("/api/app/devices", data=b"fcm_token=x")
    assert resp.status == 415
    assert await count_rows(hub_db(hub), "residents") == 0


async def test_same_token_twice_conflicts_without_a_second_resident(
    hub: TestClient[Any, Any],
) -> None:
    await register(hub)
    resp = await hub.post("/api/app/devices", json={"fcm_token": TOKEN, "platform": "ios"})
    assert resp.status == 409
    assert (await resp.json())["error"]["fields"] == {"fcm_token": "already registered"}
    assert await count_rows(hub_db(hub), "residents") == 1


async def test_refresh_token_replaces_address_and_revives_a_pruned_device(
    hub: TestClient[Any, Any],
) -> None:
    out = await register(hub)
    async with hub_db(hub).transaction() as session:
        endpoint = await session.get(Endpoint, out["device_id"])
        assert endpoint is not None
        endpoint.status = "pruned"
    new_token = TOKEN.replace("aaaa", "bbbb")
    resp = await hub.put(
        "/api/app/devices/me/token",
        json={"fcm_token": new_token, "platform": "ios"},
        headers=auth(out["credential"]),
    )
    assert resp.status == 204, await resp.text()
    async with hub_db(hub).sessionmaker() as session:
        endpoint = await session.get(Endpoint, out["device_id"])
        assert endpoint is not None
        assert (endpoint.address, endpoint.platform, endpoint.status) == (
            new_token,
            "ios",
            "active",
        )

    other = await register(hub)  # the old token is free again
    resp = await hub.put(
        "/api/app/devices/me/token",
        json={"fcm_token": new_token},
        headers=auth(other["credential"]),
    )
    assert resp.status == 409


async def test_device_calls_need_the_right_credential(hub: TestClient[Any, Any]) -> None:
    out = await register(hub)
    endpoint_id = out["device_id"]
    for header in ({}, auth(f"dev_{endpoint_id}_forged"), auth("dev_x_y"), auth("stf_nope")):
        resp = await hub.put("/api/app/profile", json={"language": "ja"}, headers=header)
        assert resp.status == 401
        assert (await resp.json())["error"]["code"] == "unauthenticated"


async def test_delete_device_removes_the_resident_with_its_last_endpoint(
    hub: TestClient[Any, Any],
) -> None:
    out = await register(hub, profile=PROFILE)
    resp = await hub.delete("/api/app/devices/me", headers=auth(out["credential"]))
    assert resp.status == 204
    db = hub_db(hub)
    for table in ("residents", "endpoints", "children", "resident_topics"):
        assert await count_rows(db, table) == 0, table
    async with db.sessionmaker() as session:
        topics = (await session.scalars(select(ResidentTopic))).all()
        assert topics == []
    resp = await hub.get("/api/app/profile", headers=auth(out["credential"]))
    assert resp.status == 401
