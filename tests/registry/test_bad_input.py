"""Hostile input on every resident-facing endpoint: always a 4xx in one JSON shape, no rows."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import count_rows
from tests.registry.conftest import hub_db
from tests.registry.test_devices import TOKEN

JSON_ENDPOINTS = [
    ("POST", "/api/app/devices"),
    ("POST", "/api/email/subscribe"),
    ("POST", "/api/liff/profile"),
]
HOSTILE_BODIES: list[Any] = [
    None,
    [],
    "a string",
    12,
    {"email": None, "fcm_token": None},
    {"email": "a" * 10_000 + "@example.jp"},
    {"email": ["x@example.jp"]},
    {"fcm_token": TOKEN, "platform": "android", "profile": {"children": [None]}},
    {"fcm_token": TOKEN, "platform": "android", "profile": {"children": "many"}},
    {"fcm_token": TOKEN, "platform": "android", "profile": {"topics": [{"$ne": 1}]}},
    {"fcm_token": TOKEN, "platform": "android", "profile": {"ward_code": "1413' --"}},
    {"fcm_token": TOKEN, "platform": "android", "profile": {"quiet_hours": {"start": 1e300}}},
    {"fcm_token": TOKEN, "platform": "android", "profile": {"children": [{}] * 50}},
    {"fcm_token": "\u0000" * 30, "platform": "android"},
    {"email": "taro@example.jp", "profile": {"language": "x" * 100}},
]


def is_error_shape(body: Any) -> bool:
    error = body.get("error") if isinstance(body, dict) else None
    return isinstance(error, dict) and {"code", "message", "fields"} <= set(error)


@pytest.mark.parametrize(("method", "path"), JSON_ENDPOINTS)
async def test_hostile_json_bodies_get_4xx_in_the_error_shape(
    hub: TestClient[Any, Any], method: str, path: str
) -> None:
    for body in HOSTILE_BODIES:
        resp = await hub.request(
            method,
            path,
            data=json.dumps(body),
            headers={"Content-Type": "application/json", "Authorization": "Bearer t"},
        )
        assert 400 <= resp.status < 500, (path, body, resp.status)
        assert is_error_shape(await resp.json()), (path, body)
    for table in ("residents", "endpoints", "children", "resident_topics"):
        assert await count_rows(hub_db(hub), table) == 0


async def test_oversized_and_odd_requests(hub: TestClient[Any, Any]) -> None:
    too_big = b'{"email": "' + b"a" * 2_000_000 + b'"}'
    resp = await hub.post(
        "/api/email/subscribe",
        data=io.BytesIO(too_big),
        headers={"Content-Type": "application/json"},
    )
    assert resp.status == 413
    resp = await hub.get("/email/confirm", params={"t": "x" * 500})
    assert resp.status == 422 and is_error_shape(await resp.json())
    resp = await hub.post("/u/" + "a" * 300, data=b"List-Unsubscribe=One-Click")
    assert resp.status in (404, 422)
    resp = await hub.put("/api/app/profile", json={"language": "ja"})
    assert resp.status == 401 and is_error_shape(await resp.json())


async def test_racing_registrations_of_one_token_leave_one_resident(
    hub: TestClient[Any, Any],
) -> None:
    # Each attempt creates a resident, then its endpoint; the losers' endpoint insert hits the
    # unique constraint, and their whole transaction (the resident too) must roll back.
    body = {"fcm_token": TOKEN, "platform": "ios", "profile": {"topics": ["disaster"]}}
    responses = await asyncio.gather(*(hub.post("/api/app/devices", json=body) for _ in range(8)))
    statuses = sorted(r.status for r in responses)
    assert statuses == [201] + [409] * 7
    db = hub_db(hub)
    assert await count_rows(db, "residents") == 1
    assert await count_rows(db, "endpoints") == 1
    assert await count_rows(db, "resident_topics") == 1
