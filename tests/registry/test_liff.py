"""LIFF profile form: LINE Login (the LINE sandbox) proves the user, never the page."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from notify.models import Endpoint
from tests.conftest import count_rows
from tests.registry.conftest import LineLogin, hub_db

USER = "U" + "ab" * 16
OTHER_CHANNEL = "9999999999"
FORM = {
    "ward_code": "141372",
    "language": "ja",
    "children": [{"birth_year": 2021, "birth_month": 6}],
    "topics": ["childcare", "events"],
}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_form_sets_the_profile_of_the_verified_line_user(
    hub: TestClient[Any, Any], line_login: LineLogin
) -> None:
    token = await line_login.issue(USER)
    resp = await hub.get("/api/liff/profile", headers=bearer(token))
    assert resp.status == 404  # nothing stored by merely opening the form
    seen = await line_login.last_seq()
    resp = await hub.post("/api/liff/profile", json=FORM, headers=bearer(token))
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["ward_code"] == "141372"
    assert body["children"] == [{"birth_year": 2021, "birth_month": 6}]
    assert body["topics"] == ["childcare", "events"]
    # What crossed the wire: the token went to verify as a query parameter, then as a Bearer.
    log = await line_login.log(after=seen)
    assert [(e["method"], e["path"], dict(parse_qsl(e["query"]))) for e in log] == [
        ("GET", "/oauth2/v2.1/verify", {"access_token": token}),
        ("GET", "/v2/profile", {}),
    ]
    assert log[1]["headers"]["authorization"] == f"Bearer {token}"
    async with hub_db(hub).sessionmaker() as session:
        endpoint = (await session.execute(select(Endpoint))).scalar_one()
    # Opened the form before following: reachable only once the follow event grants consent.
    assert (endpoint.channel, endpoint.address, endpoint.consent) == ("line", USER, "pending")

    resp = await hub.get("/api/liff/profile", headers=bearer(token))
    assert resp.status == 200
    assert (await resp.json())["resident_id"] == body["resident_id"]
    assert await count_rows(hub_db(hub), "residents") == 1


async def test_tokens_that_are_not_ours_or_not_valid_are_refused(
    hub: TestClient[Any, Any], line_login: LineLogin
) -> None:
    other_channel = await line_login.issue(USER, OTHER_CHANNEL)
    expired = await line_login.issue(USER)
    await line_login.control("POST", "login/expire", json={"access_token": expired})
    for headers in (
        {},
        {"Authorization": "Basic abc"},
        bearer("unknown"),
        bearer(other_channel),
        bearer(expired),
    ):
        resp = await hub.post("/api/liff/profile", json=FORM, headers=headers)
        assert resp.status == 401, headers
        assert (await resp.json())["error"]["code"] == "unauthenticated"
    assert await count_rows(hub_db(hub), "residents") == 0


async def test_line_login_outage_is_503_not_500(
    hub: TestClient[Any, Any], line_login: LineLogin
) -> None:
    token = await line_login.issue(USER)
    for failing in ("/oauth2/v2.1/verify", "/v2/profile"):  # either call of the two
        fault = {"count": 1, "status": 500, "paths": [failing]}
        await line_login.control("POST", "faults/next", json=fault)
        resp = await hub.post("/api/liff/profile", json=FORM, headers=bearer(token))
        assert resp.status == 503
        assert (await resp.json())["error"]["code"] == "upstream_unavailable"
        assert await count_rows(hub_db(hub), "residents") == 0
    faulted = [e["path"] for e in await line_login.log() if e.get("fault")]
    assert faulted == ["/oauth2/v2.1/verify", "/v2/profile"]


async def test_bad_form_values_get_field_messages(
    hub: TestClient[Any, Any], line_login: LineLogin
) -> None:
    token = await line_login.issue(USER)
    resp = await hub.post(
        "/api/liff/profile",
        json={"ward_code": "141500", "topics": ["childcare", "nope"]},
        headers=bearer(token),
    )
    assert resp.status == 422
    assert set((await resp.json())["error"]["fields"]) == {"ward_code", "topics.1"}
    assert await count_rows(hub_db(hub), "residents") == 0


async def test_follower_keeps_one_resident_across_webhook_and_form(
    hub: TestClient[Any, Any], line_login: LineLogin
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
    token = await line_login.issue(USER)
    resp = await hub.post("/api/liff/profile", json=FORM, headers=bearer(token))
    assert resp.status == 200
    assert await count_rows(hub_db(hub), "residents") == 1
    async with hub_db(hub).sessionmaker() as session:
        endpoint = (await session.execute(select(Endpoint))).scalar_one()
    assert endpoint.consent == "granted"


async def test_a_token_that_expires_is_refused_from_then_on(
    hub: TestClient[Any, Any], line_login: LineLogin
) -> None:
    token = await line_login.issue(USER, expires_in=600)
    resp = await hub.post("/api/liff/profile", json=FORM, headers=bearer(token))
    assert resp.status == 200
    await line_login.control("POST", "clock", json={"advance_s": 601})  # LINE's clock moves on
    for method in ("GET", "POST"):
        resp = await hub.request(method, "/api/liff/profile", json=FORM, headers=bearer(token))
        assert resp.status == 401, method
        assert (await resp.json())["error"]["code"] == "unauthenticated"
    assert await count_rows(hub_db(hub), "residents") == 1  # what was saved stays
    # A fresh login works again.
    resp = await hub.get("/api/liff/profile", headers=bearer(await line_login.issue(USER)))
    assert resp.status == 200


async def test_a_revoked_token_is_refused(hub: TestClient[Any, Any], line_login: LineLogin) -> None:
    token = await line_login.issue(USER)
    resp = await hub.post("/api/liff/profile", json=FORM, headers=bearer(token))
    assert resp.status == 200
    await line_login.revoke(token)  # as liff.logout() does, through LINE's revoke endpoint
    seen = await line_login.last_seq()
    resp = await hub.get("/api/liff/profile", headers=bearer(token))
    assert resp.status == 401
    assert (await resp.json())["error"]["code"] == "unauthenticated"
    # LINE refused it at verify; the profile was never asked for.
    assert [(e["path"], e["status"]) for e in await line_login.log(after=seen)] == [
        ("/oauth2/v2.1/verify", 400)
    ]


async def test_a_valid_token_of_another_channel_is_refused(
    hub: TestClient[Any, Any], line_login: LineLogin
) -> None:
    """LINE says the token is fine, but it was issued to another channel: not for this hub."""
    token = await line_login.issue(USER, OTHER_CHANNEL)
    seen = await line_login.last_seq()
    for method in ("GET", "POST"):
        resp = await hub.request(method, "/api/liff/profile", json=FORM, headers=bearer(token))
        assert resp.status == 401, method
        assert (await resp.json())["error"]["code"] == "unauthenticated"
    assert [(e["path"], e["status"]) for e in await line_login.log(after=seen)] == [
        ("/oauth2/v2.1/verify", 200),
        ("/oauth2/v2.1/verify", 200),
    ]
    assert await count_rows(hub_db(hub), "residents") == 0
    assert await count_rows(hub_db(hub), "endpoints") == 0
