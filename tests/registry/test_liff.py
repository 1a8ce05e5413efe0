"""LIFF profile form: LINE Login (a real fake server) proves the user, never the page."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from notify.models import Endpoint
from tests.conftest import count_rows
from tests.registry.conftest import LOGIN_CHANNEL_ID, LineLoginFake, hub_db

USER = "U" + "ab" * 16
FORM = {
    "ward_code": "141372",
    "language": "ja",
    "children": [{"birth_year": 2021, "birth_month": 6}],
    "topics": ["childcare", "events"],
}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_form_sets_the_profile_of_the_verified_line_user(
    hub: TestClient[Any, Any], line_login: LineLoginFake
) -> None:
    line_login.tokens["liff-token-1"] = (LOGIN_CHANNEL_ID, USER, 2_000)
    resp = await hub.get("/api/liff/profile", headers=bearer("liff-token-1"))
    assert resp.status == 404  # nothing stored by merely opening the form
    line_login.log.clear()
    resp = await hub.post("/api/liff/profile", json=FORM, headers=bearer("liff-token-1"))
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["ward_code"] == "141372"
    assert body["children"] == [{"birth_year": 2021, "birth_month": 6}]
    assert body["topics"] == ["childcare", "events"]
    # What crossed the wire: the token went to verify as a query parameter, then as a Bearer.
    assert [(path, query) for path, query, _ in line_login.log] == [
        ("/oauth2/v2.1/verify", {"access_token": "liff-token-1"}),
        ("/v2/profile", {}),
    ]
    assert line_login.log[1][2] == "Bearer liff-token-1"
    async with hub_db(hub).sessionmaker() as session:
        endpoint = (await session.execute(select(Endpoint))).scalar_one()
    # Opened the form before following: reachable only once the follow event grants consent.
    assert (endpoint.channel, endpoint.address, endpoint.consent) == ("line", USER, "pending")

    resp = await hub.get("/api/liff/profile", headers=bearer("liff-token-1"))
    assert resp.status == 200
    assert (await resp.json())["resident_id"] == body["resident_id"]
    assert await count_rows(hub_db(hub), "residents") == 1


async def test_tokens_that_are_not_ours_or_not_valid_are_refused(
    hub: TestClient[Any, Any], line_login: LineLoginFake
) -> None:
    line_login.tokens["other-channel"] = ("9999999999", USER, 2_000)
    line_login.tokens["expired"] = (LOGIN_CHANNEL_ID, USER, 0)
    for headers in (
        {},
        {"Authorization": "Basic abc"},
        bearer("unknown"),
        bearer("other-channel"),
        bearer("expired"),
    ):
        resp = await hub.post("/api/liff/profile", json=FORM, headers=headers)
        assert resp.status == 401, headers
        assert (await resp.json())["error"]["code"] == "unauthenticated"
    assert await count_rows(hub_db(hub), "residents") == 0


async def test_line_login_outage_is_503_not_500(
    hub: TestClient[Any, Any], line_login: LineLoginFake
) -> None:
    line_login.tokens["t"] = (LOGIN_CHANNEL_ID, USER, 2_000)
    line_login.status = 500
    resp = await hub.post("/api/liff/profile", json=FORM, headers=bearer("t"))
    assert resp.status == 503
    assert (await resp.json())["error"]["code"] == "upstream_unavailable"
    assert await count_rows(hub_db(hub), "residents") == 0


async def test_bad_form_values_get_field_messages(
    hub: TestClient[Any, Any], line_login: LineLoginFake
) -> None:
    line_login.tokens["t"] = (LOGIN_CHANNEL_ID, USER, 2_000)
    resp = await hub.post(
        "/api/liff/profile",
        json={"ward_code": "141500", "topics": ["childcare", "nope"]},
        headers=bearer("t"),
    )
    assert resp.status == 422
    assert set((await resp.json())["error"]["fields"]) == {"ward_code", "topics.1"}
    assert await count_rows(hub_db(hub), "residents") == 0


async def test_follower_keeps_one_resident_across_webhook_and_form(
    hub: TestClient[Any, Any], line_login: LineLoginFake
) -> None:
    from tests.registry.test_line_webhook import post

    follow = {
        "destination": "U" + "0" * 32,
        "events": [
            {
                "type": "follow",
                "mode": "active",
                "timestamp": 1,
                "source": {"type": "user", "userId": USER},
                "webhookEventId": "01FOLLOW",
                "deliveryContext": {"isRedelivery": False},
            }
        ],
    }
    assert (await post(hub, follow)).status == 200
    line_login.tokens["t"] = (LOGIN_CHANNEL_ID, USER, 2_000)
    resp = await hub.post("/api/liff/profile", json=FORM, headers=bearer("t"))
    assert resp.status == 200
    assert await count_rows(hub_db(hub), "residents") == 1
    async with hub_db(hub).sessionmaker() as session:
        endpoint = (await session.execute(select(Endpoint))).scalar_one()
    assert endpoint.consent == "granted"
