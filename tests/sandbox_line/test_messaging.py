"""Sending through the LINE simulator: validation, auth, retry keys, blocked users, limits."""

from __future__ import annotations

import uuid

import pytest

from sandbox.line import LineConfig

from .helpers import TEXT, Line, user

MISSING_TOKEN = (
    "Authentication failed. Confirm that the access token in the authorization header is valid."
)


async def test_multicast_is_accepted_counted_and_logged(line: Line) -> None:
    key = str(uuid.uuid4())
    status, headers, body = await line.multicast(
        [user(1), user(2)], customAggregationUnits=["ward_1"], headers={"X-Line-Retry-Key": key}
    )
    assert (status, body) == (200, {})  # LINE answers a multicast with an empty object
    request_id = headers["x-line-request-id"]
    uuid.UUID(request_id)
    assert await line.delivered() == {user(1): 1, user(2): 1}
    [entry] = (await line.control("GET", "log", params={"path": "/v2/bot/message"}))["entries"]
    assert entry["headers"]["x-line-retry-key"] == key
    assert entry["body"]["to"] == [user(1), user(2)]
    assert entry["request_id"] == request_id and entry["status"] == 200
    stats = await line.control("GET", "stats")
    assert stats["units"]["ward_1"]["delivered"] == 2
    assert stats["usersByMessageCount"] == {"1": 2}


@pytest.mark.parametrize(
    ("body", "details"),
    [
        (
            {"to": [user(1)], "messages": [{"type": "text"}]},
            [{"message": "must be specified", "property": "messages[0].text"}],
        ),
        (
            {"to": [user(i) for i in range(501)], "messages": TEXT},
            [{"message": "Size must be between 1 and 500", "property": "to"}],
        ),
        (
            {"to": [user(1)], "messages": TEXT * 6},
            [{"message": "Size must be between 1 and 5", "property": "messages"}],
        ),
        (
            {"to": [user(1)], "messages": [{"type": "txt", "text": "x"}]},
            [{"property": "messages[0].type"}],
        ),
        (
            {"to": [user(1)], "messages": TEXT, "customAggregationUnits": ["ward-1"]},
            [{"property": "customAggregationUnits[0]"}],
        ),
        (
            {"to": [user(1)], "messages": [{"type": "text", "text": "あ" * 5001}]},
            [{"message": "Length must be between 1 and 5000", "property": "messages[0].text"}],
        ),
        (
            {"to": [user(1), "U123", user(2)], "messages": TEXT},
            [{"message": "Invalid user ID", "property": "to[1]"}],
        ),
        ({"messages": TEXT}, [{"message": "must be specified", "property": "to"}]),
        (
            {
                "to": [user(1)],
                "messages": [
                    {
                        "type": "flex",
                        "altText": "お知らせ",
                        "contents": {
                            "type": "bubble",
                            "body": {"type": "box", "layout": "diagonal", "contents": []},
                        },
                    }
                ],
            },
            [{"property": "messages[0].contents.body.layout"}],
        ),
    ],
)
async def test_invalid_bodies_get_line_400_shape(
    line: Line, body: dict, details: list[dict[str, str]]
) -> None:
    status, headers, answer = await line.call("POST", "/v2/bot/message/multicast", json=body)
    assert status == 400
    assert answer["message"] == f"The request body has {len(details)} error(s)"
    assert len(answer["details"]) == len(details)
    for got, expected in zip(answer["details"], details, strict=True):
        assert expected.items() <= got.items()
    assert "x-line-request-id" in headers
    assert await line.control("GET", "counters") == {"counters": {}}


async def test_unparsable_json_and_wrong_content_type(line: Line) -> None:
    status, _, body = await line.call(
        "POST",
        "/v2/bot/message/multicast",
        data=b'{"to": [',
        headers={"Content-Type": "application/json"},
    )
    assert status == 400
    assert body["message"].startswith("The request body could not be parsed as JSON (line: 1")
    status, _, _ = await line.call(
        "POST", "/v2/bot/message/multicast", data=b"to=x", headers={"Content-Type": "text/plain"}
    )
    assert status == 415


async def test_bearer_token_is_checked(line: Line) -> None:
    status, _, body = await line.call("GET", "/v2/bot/message/quota", auth=False)
    assert (status, body) == (401, {"message": MISSING_TOKEN})
    status, _, body = await line.call(
        "GET", "/v2/bot/message/quota", auth=False, headers={"Authorization": "Bearer wrong"}
    )
    assert status == 401 and "invalid token" in body["message"]
    status, _, body = await line.call("GET", "/v2/bot/no/such/endpoint")
    assert (status, body) == (404, {"message": "Not found"})


async def test_retry_key_repeat_gets_409_with_the_accepted_request_id(line: Line) -> None:
    key = {"X-Line-Retry-Key": str(uuid.uuid4())}
    status, first, _ = await line.multicast([user(7)], headers=key)
    assert status == 200
    status, headers, body = await line.multicast([user(7)], headers=key)
    assert status == 409
    assert body == {"message": "The retry key is already accepted"}
    assert headers["x-line-accepted-request-id"] == first["x-line-request-id"]
    assert headers["x-line-request-id"] != first["x-line-request-id"]
    assert await line.delivered() == {user(7): 1}
    # The key is valid for 24 hours, then the same key is a new request again.
    await line.control("POST", "clock", json={"advance_s": 24 * 3600 + 1})
    assert (await line.multicast([user(7)], headers=key))[0] == 200


async def test_retry_key_must_be_a_uuid(line: Line) -> None:
    status, _, body = await line.multicast([user(1)], headers={"X-Line-Retry-Key": "again"})
    assert status == 400 and "X-Line-Retry-Key" in body["message"]


async def test_push_returns_sent_messages_and_repeats_them_on_409(line: Line) -> None:
    key = {"X-Line-Retry-Key": str(uuid.uuid4())}
    body = {
        "to": user(3),
        "messages": [*TEXT, {"type": "sticker", "packageId": "1", "stickerId": "2"}],
    }
    status, _, first = await line.call("POST", "/v2/bot/message/push", json=body, headers=key)
    assert status == 200
    assert [set(m) for m in first["sentMessages"]] == [{"id", "quoteToken"}] * 2
    assert all(m["id"].isdigit() for m in first["sentMessages"])
    status, _, again = await line.call("POST", "/v2/bot/message/push", json=body, headers=key)
    assert status == 409 and again["sentMessages"] == first["sentMessages"]


async def test_blocked_users_and_duplicates_are_silently_not_delivered(line: Line) -> None:
    await line.control("POST", "blocked", json={"add": [user(2)]})
    status, _, body = await line.multicast([user(1), user(2), user(1), user(3)])
    assert (status, body) == (200, {})
    counters = await line.control("GET", "counters")
    assert counters["counters"]["delivered"]["by_recipient"] == {user(1): 1, user(3): 1}
    assert counters["counters"]["blocked"]["by_recipient"] == {user(2): 1}
    assert (await line.call("GET", f"/v2/bot/profile/{user(2)}"))[0] == 404
    status, _, profile = await line.call("GET", f"/v2/bot/profile/{user(3)}")
    assert status == 200 and profile["userId"] == user(3) and profile["displayName"]


async def test_multicast_rate_limit_gives_429_without_retry_after(line: Line) -> None:
    await line.control("POST", "limits", json={"multicast": [3, 60]})
    for _ in range(3):
        assert (await line.multicast([user(1)]))[0] == 200
    status, headers, body = await line.multicast([user(1)])
    assert status == 429
    assert body == {"message": "The API rate limit has been exceeded. Try again later."}
    assert "Retry-After" not in headers
    assert (await line.call("GET", "/v2/bot/message/quota"))[0] == 200  # its own bucket
    await line.control("POST", "clock", json={"advance_s": 61})  # the window slides on
    assert (await line.multicast([user(1)]))[0] == 200
    await line.control("POST", "limits", json={"enabled": False})
    for _ in range(5):
        assert (await line.multicast([user(1)]))[0] == 200


async def test_broadcast_default_limit_is_60_an_hour(line: Line) -> None:
    await line.control("POST", "followers", json={"generate": 3})
    for _ in range(60):
        status, _, _ = await line.call("POST", "/v2/bot/message/broadcast", json={"messages": TEXT})
        assert status == 200
    status, _, _ = await line.call("POST", "/v2/bot/message/broadcast", json={"messages": TEXT})
    assert status == 429
    stats = await line.control("GET", "stats")
    assert stats["delivered"] == 180 and stats["usersByMessageCount"] == {"60": 3}


async def test_narrowcast_is_accepted_with_202_and_reports_progress(line: Line) -> None:
    await line.control("POST", "followers", json={"generate": 10})
    await line.control("POST", "blocked", json={"add": [user(0)]})
    body = {"messages": TEXT, "limit": {"max": 5}}
    status, headers, answer = await line.call("POST", "/v2/bot/message/narrowcast", json=body)
    assert (status, answer) == (202, {})
    request_id = headers["x-line-request-id"]
    status, _, progress = await line.call(
        "GET", "/v2/bot/message/progress/narrowcast", params={"requestId": request_id}
    )
    assert status == 200
    assert progress["phase"] == "succeeded"
    assert (progress["targetCount"], progress["successCount"]) == (5, 5)
    assert progress["acceptedTime"].endswith("Z")


@pytest.mark.parametrize("config", [LineConfig(quota=3)])
async def test_monthly_quota_and_consumption(line: Line) -> None:
    status, _, quota = await line.call("GET", "/v2/bot/message/quota")
    assert quota == {"type": "limited", "value": 3}
    assert (await line.multicast([user(1), user(2)]))[0] == 200
    status, _, used = await line.call("GET", "/v2/bot/message/quota/consumption")
    assert used == {"totalUsage": 2}
    status, _, body = await line.multicast([user(3), user(4)])
    assert (status, body) == (429, {"message": "You have reached your monthly limit."})


@pytest.mark.parametrize("config", [LineConfig(aggregation_unit_cap=2)])
async def test_aggregation_unit_names_are_capped_per_month(line: Line) -> None:
    for name in ("bc1_ward1", "bc1_ward2", "bc1_ward1"):
        assert (await line.multicast([user(1)], customAggregationUnits=[name]))[0] == 200
    status, _, body = await line.multicast([user(1)], customAggregationUnits=["bc1_ward3"])
    assert status == 400 and body["details"][0]["property"] == "customAggregationUnits"
    _, _, info = await line.call("GET", "/v2/bot/message/aggregation/info")
    assert info == {"numOfCustomAggregationUnits": 2}
    _, _, page = await line.call("GET", "/v2/bot/message/aggregation/list", params={"limit": "1"})
    assert page == {"customAggregationUnits": ["bc1_ward1"], "next": "1"}
    _, _, page = await line.call(
        "GET", "/v2/bot/message/aggregation/list", params={"limit": "1", "start": "1"}
    )
    assert page == {"customAggregationUnits": ["bc1_ward2"]}


async def test_validate_endpoints(line: Line) -> None:
    for kind in ("push", "multicast", "broadcast", "narrowcast", "reply"):
        status, _, body = await line.call(
            "POST", f"/v2/bot/message/validate/{kind}", json={"messages": TEXT}
        )
        assert (status, body) == (200, {})
    status, _, body = await line.call(
        "POST", "/v2/bot/message/validate/multicast", json={"messages": [{"type": "text"}]}
    )
    assert status == 400 and body["details"][0]["property"] == "messages[0].text"
    assert await line.control("GET", "counters") == {"counters": {}}


async def test_followers_ids_are_paged(line: Line) -> None:
    await line.control("POST", "followers", json={"generate": 5})
    _, _, page = await line.call("GET", "/v2/bot/followers/ids", params={"limit": "3"})
    assert len(page["userIds"]) == 3 and page["next"] == "3"
    _, _, rest = await line.call("GET", "/v2/bot/followers/ids", params={"start": "3"})
    assert len(rest["userIds"]) == 2 and "next" not in rest
    assert set(page["userIds"]) | set(rest["userIds"]) == {user(i) for i in range(5)}
