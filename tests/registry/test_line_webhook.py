"""LINE webhook against the SDK's real fixture, signed here with a test secret."""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from notify.models import Endpoint, Resident
from notify.registry.line_webhook import sign
from tests.conftest import count_rows
from tests.registry.conftest import LINE_SECRET, hub_db

USER = "U206d25c2ea6bd87c17655609a1c37cb8"  # the fixture's user


@pytest.fixture
def fixture_body(reference_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (reference_dir / "line-sdk-fixtures" / "webhook.v3.json").read_text()
    )
    return data


def unique_ids(body: dict[str, Any], prefix: str = "ev") -> dict[str, Any]:
    """The SDK fixture reuses one webhookEventId for all 28 events; real LINE never does."""
    body = copy.deepcopy(body)
    for i, event in enumerate(body["events"]):
        event["webhookEventId"] = f"{prefix}{i:02d}"
    return body


def only(body: dict[str, Any], *types: str) -> dict[str, Any]:
    return {**body, "events": [e for e in body["events"] if e["type"] in types]}


async def post(
    hub: TestClient[Any, Any], body: dict[str, Any] | bytes, *, secret: str = LINE_SECRET
) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    return await hub.post(
        "/webhooks/line",
        data=raw,
        headers={"Content-Type": "application/json", "x-line-signature": sign(secret, raw)},
    )


async def endpoint_state(hub: TestClient[Any, Any], user: str = USER) -> tuple[str, str] | None:
    async with hub_db(hub).sessionmaker() as session:
        endpoint = (
            await session.execute(select(Endpoint).where(Endpoint.address == user))
        ).scalar_one_or_none()
    return None if endpoint is None else (endpoint.status, endpoint.consent)


async def test_missing_or_forged_signature_is_401_and_stores_nothing(
    hub: TestClient[Any, Any], fixture_body: dict[str, Any]
) -> None:
    raw = json.dumps(unique_ids(only(fixture_body, "follow"))).encode()
    attempts = [
        {},
        {"x-line-signature": ""},
        {"x-line-signature": sign("another-secret", raw)},
        {"x-line-signature": sign(LINE_SECRET, raw + b" ")},  # signed a different body
        {"x-line-signature": "ｘ" * 44},  # non-ASCII must not crash the compare
    ]
    for extra in attempts:
        resp = await hub.post(
            "/webhooks/line", data=raw, headers={"Content-Type": "application/json", **extra}
        )
        assert resp.status == 401, extra
        assert (await resp.json())["error"]["code"] == "unauthenticated"
    db = hub_db(hub)
    assert await count_rows(db, "residents") == 0
    assert await count_rows(db, "webhook_events") == 0


async def test_fixture_as_is_processes_one_event_per_webhook_event_id(
    hub: TestClient[Any, Any], fixture_body: dict[str, Any]
) -> None:
    # All 28 fixture events share "testwebhookeventid": only the first (a message) counts.
    resp = await post(hub, fixture_body)
    assert resp.status == 200, await resp.text()
    result = await resp.json()
    assert result == {
        "received": 28,
        "duplicates": 27,
        "followed": 0,
        "unfollowed": 0,
        "ignored": 1,
    }
    assert await count_rows(hub_db(hub), "webhook_events") == 1
    assert await count_rows(hub_db(hub), "residents") == 0


async def test_every_fixture_event_type_is_accepted_follow_then_unfollow_blocks(
    hub: TestClient[Any, Any], fixture_body: dict[str, Any]
) -> None:
    resp = await post(hub, unique_ids(fixture_body))
    assert resp.status == 200, await resp.text()
    result = await resp.json()
    assert result["followed"] == 1 and result["unfollowed"] == 1
    assert result["ignored"] == 26  # incl. the "undefined" type and group/room events
    assert await endpoint_state(hub) == ("blocked", "withdrawn")
    assert await count_rows(hub_db(hub), "webhook_events") == 28
    assert await count_rows(hub_db(hub), "residents") == 1


async def test_follow_creates_and_refollow_reactivates_the_same_resident(
    hub: TestClient[Any, Any], fixture_body: dict[str, Any]
) -> None:
    follow = only(fixture_body, "follow")
    unfollow = only(fixture_body, "unfollow")
    assert (await post(hub, unique_ids(follow, "a"))).status == 200
    assert await endpoint_state(hub) == ("active", "granted")
    async with hub_db(hub).sessionmaker() as session:
        first = (await session.scalars(select(Resident.public_id))).one()
    assert (await post(hub, unique_ids(unfollow, "b"))).status == 200
    assert await endpoint_state(hub) == ("blocked", "withdrawn")
    assert (await post(hub, unique_ids(follow, "c"))).status == 200
    assert await endpoint_state(hub) == ("active", "granted")
    async with hub_db(hub).sessionmaker() as session:
        assert (await session.scalars(select(Resident.public_id))).all() == [first]


async def test_redelivery_is_applied_once(
    hub: TestClient[Any, Any], fixture_body: dict[str, Any]
) -> None:
    follow = unique_ids(only(fixture_body, "follow"), "f")
    unfollow = unique_ids(only(fixture_body, "unfollow"), "u")
    assert (await post(hub, follow)).status == 200
    assert (await post(hub, unfollow)).status == 200
    # LINE redelivers the old follow: it must not undo the later unfollow.
    redelivered = copy.deepcopy(follow)
    redelivered["events"][0]["deliveryContext"]["isRedelivery"] = True
    resp = await post(hub, redelivered)
    assert resp.status == 200
    assert (await resp.json())["duplicates"] == 1
    assert await endpoint_state(hub) == ("blocked", "withdrawn")


async def test_verification_request_with_no_events_is_ok(hub: TestClient[Any, Any]) -> None:
    resp = await post(hub, {"destination": "U" + "0" * 32, "events": []})
    assert resp.status == 200
    assert (await resp.json())["received"] == 0


async def test_malformed_bodies_are_4xx_and_store_nothing(
    hub: TestClient[Any, Any], fixture_body: dict[str, Any]
) -> None:
    follow = unique_ids(only(fixture_body, "follow"))
    bad_event = copy.deepcopy(follow)
    bad_event["events"].append({"type": ["follow"], "webhookEventId": "zz"})
    nul_event = copy.deepcopy(follow)
    nul_event["events"][0]["webhookEventId"] = "01H\x00"  # PostgreSQL cannot store U+0000
    cases: list[tuple[bytes, int]] = [
        (b"[" * 100_000 + b"]" * 100_000, 400),  # deeper than the parser's recursion limit
        (json.dumps(nul_event).encode(), 422),
        (b"{not json", 400),
        (b"\xff\xfe", 400),
        (json.dumps({"events": "nope"}).encode(), 422),
        (json.dumps([1, 2]).encode(), 422),
        (json.dumps(bad_event).encode(), 422),  # one bad event: the good follow is not stored
    ]
    for raw, status in cases:
        resp = await post(hub, raw)
        assert resp.status == status, raw
        assert "error" in await resp.json()
    assert await count_rows(hub_db(hub), "residents") == 0
    assert await count_rows(hub_db(hub), "webhook_events") == 0


async def test_a_nul_in_a_message_nobody_reads_does_not_refuse_the_follow_beside_it(
    hub: TestClient[Any, Any], fixture_body: dict[str, Any]
) -> None:
    follow = unique_ids(only(fixture_body, "follow"))
    message = {
        "type": "message",
        "webhookEventId": "01HMESSAGEWITHNUL00000000",
        "timestamp": 1,
        "source": {"type": "user", "userId": "U" + "0" * 32},
        "message": {"type": "text", "id": "1", "text": "こんにちは\u0000"},
        "deliveryContext": {"isRedelivery": False},
    }
    follow["events"].append(message)
    resp = await post(hub, follow)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["followed"] == 1
    assert await count_rows(hub_db(hub), "residents") == 1


async def test_hostile_user_ids_are_ignored(
    hub: TestClient[Any, Any], fixture_body: dict[str, Any]
) -> None:
    follow = unique_ids(only(fixture_body, "follow"))
    follow["events"][0]["source"]["userId"] = "U' OR 1=1 --"
    resp = await post(hub, follow)
    assert resp.status == 200
    assert (await resp.json())["ignored"] == 1
    assert await count_rows(hub_db(hub), "residents") == 0


async def test_concurrent_follows_of_one_user_make_one_resident(
    hub: TestClient[Any, Any], fixture_body: dict[str, Any]
) -> None:
    follow = only(fixture_body, "follow")
    bodies = [unique_ids(follow, f"p{i}-") for i in range(6)]
    responses = await asyncio.gather(*(post(hub, body) for body in bodies))
    assert [r.status for r in responses] == [200] * 6
    assert await count_rows(hub_db(hub), "residents") == 1
    assert await count_rows(hub_db(hub), "endpoints") == 1
    assert await endpoint_state(hub) == ("active", "granted")
