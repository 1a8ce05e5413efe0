"""LINE Login (LIFF tokens): verify, revoke and profile in LINE's shapes; tokens by control."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft4Validator

from .helpers import Line, user

CHANNEL = "1654000001"
OTHER_CHANNEL = "1654999999"
EXPIRED = {"error": "invalid_request", "error_description": "access token expired"}
BAD_PARAMETERS = {
    "error": "invalid_request",
    "error_description": "some parameters missed or invalid",
}
INVALID_TOKEN = {"message": "invalid token"}


async def issue(line: Line, user_id: str, channel: str = CHANNEL, **extra: Any) -> dict[str, Any]:
    answer: dict[str, Any] = await line.control(
        "POST", "login/tokens", json={"userId": user_id, "channelId": channel, **extra}
    )
    return answer


async def verify(line: Line, token: str) -> tuple[int, Any, Any]:
    return await line.call("GET", "/oauth2/v2.1/verify", auth=False, params={"access_token": token})


async def profile(line: Line, token: str) -> tuple[int, Any, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    return await line.call("GET", "/v2/profile", auth=False, headers=headers)


async def revoke(line: Line, **form: str) -> tuple[int, Any, Any]:
    return await line.call("POST", "/oauth2/v2.1/revoke", auth=False, data=form)


def oauth_schemas(spec_dir: Path) -> dict[str, Any]:
    """The verify answer and OAuth error of LINE's own document for the same endpoint."""
    document = yaml.safe_load((spec_dir / "channel-access-token.yml").read_text(encoding="utf-8"))
    schemas: dict[str, Any] = document["components"]["schemas"]
    return schemas


async def test_an_issued_token_verifies_and_reads_the_profile(line: Line, spec_dir: Path) -> None:
    issued = await issue(line, user(1), expiresIn=3600)
    assert issued["token_type"] == "Bearer" and issued["expires_in"] == 3600
    assert (issued["client_id"], issued["userId"]) == (CHANNEL, user(1))

    status, headers, body = await verify(line, issued["access_token"])
    assert status == 200 and "x-line-request-id" in headers
    assert set(body) == {"scope", "client_id", "expires_in"}
    assert body["client_id"] == CHANNEL and body["scope"] == "profile openid"
    assert 3590 <= body["expires_in"] <= 3600  # seconds left, an integer
    Draft4Validator(oauth_schemas(spec_dir)["VerifyChannelAccessTokenResponse"]).validate(body)

    status, headers, body = await profile(line, issued["access_token"])
    assert status == 200 and "x-line-request-id" in headers
    # pictureUrl / statusMessage are left out when the user has none, as LINE does.
    assert body == {"userId": user(1), "displayName": "LINE利用者 0001"}


async def test_profile_carries_what_the_user_set(line: Line) -> None:
    issued = await issue(
        line,
        user(2),
        displayName="川崎 太郎",
        pictureUrl="https://profile.line-scdn.net/abcdefghijklmn",
        statusMessage="こんにちは",
    )
    status, _, body = await profile(line, issued["access_token"])
    assert status == 200
    assert body == {
        "userId": user(2),
        "displayName": "川崎 太郎",
        "pictureUrl": "https://profile.line-scdn.net/abcdefghijklmn",
        "statusMessage": "こんにちは",
    }


async def test_expired_tokens_get_lines_errors(line: Line, spec_dir: Path) -> None:
    issued = await issue(line, user(1), expiresIn=60)
    await line.control("POST", "clock", json={"advance_s": 61})
    status, _, body = await verify(line, issued["access_token"])
    assert (status, body) == (400, EXPIRED)
    Draft4Validator(oauth_schemas(spec_dir)["ErrorResponse"]).validate(body)
    status, _, body = await profile(line, issued["access_token"])
    assert (status, body) == (401, INVALID_TOKEN)


async def test_unknown_or_missing_tokens_are_refused(line: Line) -> None:
    assert (await verify(line, "eyJnot-issued"))[::2] == (400, EXPIRED)
    status, _, body = await line.call("GET", "/oauth2/v2.1/verify", auth=False)
    assert (status, body) == (400, BAD_PARAMETERS)
    assert (await profile(line, "eyJnot-issued"))[::2] == (401, INVALID_TOKEN)
    status, _, body = await line.call("GET", "/v2/profile", auth=False)
    assert (status, body) == (401, INVALID_TOKEN)
    # The Messaging API's channel token is no LINE Login token.
    assert (await line.call("GET", "/v2/profile"))[0] == 401


async def test_revoke_endpoint_ends_a_token_of_its_own_channel_only(line: Line) -> None:
    issued = await issue(line, user(1))
    token = issued["access_token"]
    status, _, body = await revoke(line, access_token=token, client_id=OTHER_CHANNEL)
    assert (status, body) == (400, BAD_PARAMETERS)
    assert (await verify(line, token))[0] == 200
    assert (await revoke(line, access_token=token))[::2] == (400, BAD_PARAMETERS)

    status, _, body = await revoke(line, access_token=token, client_id=CHANNEL)
    assert (status, body) == (200, None)  # 200 with an empty body (no JSON in it)
    assert (await verify(line, token))[::2] == (400, EXPIRED)
    assert (await profile(line, token))[::2] == (401, INVALID_TOKEN)
    # Revoking again, or a token nobody issued, is not an error.
    assert (await revoke(line, access_token=token, client_id=CHANNEL))[0] == 200
    assert (await revoke(line, access_token="eyJnothing", client_id=CHANNEL))[0] == 200


async def test_control_routes_expire_and_revoke_by_token_or_user(line: Line) -> None:
    first = (await issue(line, user(1)))["access_token"]
    second = (await issue(line, user(1), channel=OTHER_CHANNEL))["access_token"]
    third = (await issue(line, user(2)))["access_token"]

    ended = await line.control("POST", "login/expire", json={"access_token": first})
    assert [t["status"] for t in ended["tokens"]] == ["expired"]
    assert (await verify(line, first))[::2] == (400, EXPIRED)

    ended = await line.control("POST", "login/revoke", json={"userId": user(1)})
    assert {t["access_token"]: t["status"] for t in ended["tokens"]} == {
        first: "revoked",
        second: "revoked",
    }
    assert (await verify(line, second))[0] == 400
    assert (await verify(line, third))[0] == 200

    listed = await line.control("GET", "login/tokens", params={"userId": user(2)})
    assert [(t["access_token"], t["status"]) for t in listed["tokens"]] == [(third, "active")]


async def test_control_route_checks_what_it_issues(line: Line) -> None:
    for body in (
        {"userId": "not-a-user", "channelId": CHANNEL},
        {"userId": user(1), "channelId": 1654000001},
        {"userId": user(1), "channelId": "channel"},
        {"userId": user(1), "channelId": CHANNEL, "expiresIn": 0},
        {"userId": user(1), "channelId": CHANNEL, "expiresIn": "60"},
        {"userId": user(1), "channelId": CHANNEL, "displayName": 7},
    ):
        async with line.session.post(line.url + "/_sandbox/login/tokens", json=body) as response:
            assert response.status == 400, body
            assert "message" in await response.json()
    async with line.session.post(
        line.url + "/_sandbox/login/revoke", json={"access_token": "eyJnothing"}
    ) as response:
        assert response.status == 400


async def test_login_requests_are_logged_and_can_be_faulted(line: Line) -> None:
    token = (await issue(line, user(1)))["access_token"]
    await line.control(
        "POST", "faults/next", json={"count": 1, "status": 500, "paths": ["/oauth2/"]}
    )
    assert (await verify(line, token))[0] == 500
    assert (await verify(line, token))[0] == 200
    assert (await profile(line, token))[0] == 200

    entries = (await line.control("GET", "log"))["entries"]
    assert [(e["method"], e["path"], e["status"], e.get("fault")) for e in entries] == [
        ("GET", "/oauth2/v2.1/verify", 500, "error"),
        ("GET", "/oauth2/v2.1/verify", 200, None),
        ("GET", "/v2/profile", 200, None),
    ]  # control routes are not logged
    assert entries[1]["query"] == f"access_token={token}"
    assert entries[2]["headers"]["authorization"] == f"Bearer {token}"


async def test_reset_forgets_every_token(line: Line) -> None:
    token = (await issue(line, user(1)))["access_token"]
    await line.control("POST", "reset")
    assert (await verify(line, token))[::2] == (400, EXPIRED)
    assert (await line.control("GET", "login/tokens"))["tokens"] == []
