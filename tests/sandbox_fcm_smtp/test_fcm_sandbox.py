"""The FCM HTTP v1 simulator, driven over real HTTP with real google-auth credentials."""

from __future__ import annotations

import asyncio
import datetime
import json
from pathlib import Path

import aiohttp
import pytest
from firebase_admin import messaging
from google.auth.exceptions import RefreshError

from sandbox.fcm import FcmSandbox
from sandbox.fcm.topics import ConditionError, parse_condition
from sandbox.runner import write_service_account

from .conftest import PROJECT, fetch_access_token

TOKEN = "dev-1:APA91bHun4MxP5egoKMwt2KZFBaFUH-1RYqx"
FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"


def fcm_code(body: dict) -> str | None:
    for detail in body["error"].get("details", []):
        if detail["@type"] == FCM_ERROR:
            return str(detail["errorCode"])
    return None


def simple(token: str = TOKEN) -> dict:
    return {"token": token, "notification": {"title": "お知らせ", "body": "本文"}}


async def test_google_auth_gets_a_token_and_the_message_is_delivered(fcm_client, fcm) -> None:
    status, body = await fcm_client.send(simple())
    assert status == 200
    assert body["name"].startswith(f"projects/{PROJECT}/messages/")
    counters = await fcm_client.control.counters()
    assert counters["delivered"]["by_recipient"] == {TOKEN: 1}
    assert counters["oauth_tokens"]["total"] == 1
    logged = (await fcm_client.control.log(path="/v1/"))[-1]
    assert logged["body"]["message"]["notification"]["title"] == "お知らせ"
    assert "authorization" not in logged["headers"]  # credentials never land in the log


async def test_a_forged_signature_is_refused(fcm, account, tmp_path: Path) -> None:
    forged = write_service_account(tmp_path / "forged.json", fcm.token_uri, PROJECT)
    info = json.loads(forged.path.read_text())
    info["private_key_id"] = account.key_id  # claims the registered key, signs with another
    forged.path.write_text(json.dumps(info))
    with pytest.raises(RefreshError, match="invalid_grant"):
        await fetch_access_token(forged.path)


async def test_missing_or_unknown_bearer_is_unauthenticated(fcm, session) -> None:
    for headers in ({}, {"Authorization": "Bearer ya29.made-up"}):
        async with session.post(
            f"{fcm.url}/v1/projects/{PROJECT}/messages:send",
            json={"message": simple()},
            headers=headers,
        ) as response:
            body = await response.json()
        assert response.status == 401
        assert body["error"]["status"] == "UNAUTHENTICATED"


async def test_an_expired_access_token_is_refused(fcm_client, account) -> None:
    await fcm_client.control.limits(access_token_ttl_s=1)
    fcm_client.token = await fetch_access_token(account.path)
    assert (await fcm_client.send(simple()))[0] == 200
    await asyncio.sleep(1.1)
    assert (await fcm_client.send(simple()))[0] == 401


async def test_another_project_is_permission_denied(fcm_client) -> None:
    status, body = await fcm_client.send(simple(), project="someone-else")
    assert status == 403 and body["error"]["status"] == "PERMISSION_DENIED"


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"token": TOKEN, "notification": {"title": "x", "colour": "red"}}, "message.notification"),
        ({"token": TOKEN, "android": {"priority": "URGENT"}}, "message.android.priority"),
        ({"token": TOKEN, "android": {"ttl": "3600"}}, "message.android.ttl"),
        ({"token": TOKEN, "data": {"count": 3}}, "message.data.count"),
        ({"token": TOKEN, "apns": {"headers": {"apns-priority": 10}}}, "message.apns.headers"),
    ],
)
async def test_schema_violations_get_googles_400_shape(fcm_client, message, field) -> None:
    status, body = await fcm_client.send(message)
    assert status == 400
    error = body["error"]
    assert error["code"] == 400 and error["status"] == "INVALID_ARGUMENT"
    assert fcm_code(body) == "INVALID_ARGUMENT"
    bad_request = [d for d in error["details"] if d["@type"].endswith("google.rpc.BadRequest")]
    assert bad_request and bad_request[0]["fieldViolations"][0]["field"].startswith(field)
    assert await fcm_client.control.counters("delivered") == {}


@pytest.mark.parametrize(
    "message",
    [
        {"token": TOKEN, "topic": "news"},
        {"notification": {"title": "no target"}},
        {"token": TOKEN, "data": {"from": "me"}},
        {"token": TOKEN, "data": {"google.x": "1"}},
        {"topic": "/topics/news"},
        {"token": TOKEN, "data": {"big": "x" * 5000}},
        {"condition": "'a' in topics &&"},
    ],
)
async def test_fcm_rules_beyond_the_schema(fcm_client, message) -> None:
    status, body = await fcm_client.send(message)
    assert status == 400 and fcm_code(body) == "INVALID_ARGUMENT"


async def test_a_verdict_is_kept_per_shape_and_never_lent(fcm_client) -> None:
    """Verdicts are cached per body without its token. A body that holds its token twice
    (here also as its 5,000-byte text) is judged on its own, not by the key it would share
    with a small valid message."""

    def message(token: str, text: str) -> dict:
        return {"token": token, "notification": {"title": "お知らせ", "body": text}}

    for n in range(3):
        assert (await fcm_client.send(message(f"dev-{n}:APA91b", "")))[0] == 200
    token = "dev-9:" + "t" * 5000
    status, body = await fcm_client.send(message(token, token))
    assert status == 400 and "too big" in body["error"]["message"]
    assert (await fcm_client.send(message("", "")))[0] == 400


async def test_firebase_admins_own_encoding_is_accepted(fcm_client) -> None:
    message = messaging.Message(
        topic="placeholder",
        data={"mode": "disaster"},
        notification=messaging.Notification(title="避難指示", body="直ちに避難"),
        android=messaging.AndroidConfig(
            priority="high",
            ttl=datetime.timedelta(hours=1),
            notification=messaging.AndroidNotification(channel_id="alerts", visibility="public"),
        ),
        apns=messaging.APNSConfig(
            headers={"apns-priority": "10"},
            payload=messaging.APNSPayload(aps=messaging.Aps(sound="default", badge=1)),
        ),
    )
    encoded = messaging._MessagingService.encode_message(message)
    encoded.pop("topic")
    status, _ = await fcm_client.send({**encoded, "token": TOKEN}, validate_only=False)
    assert status == 200


async def test_validate_only_does_not_deliver(fcm_client) -> None:
    status, _ = await fcm_client.send(simple(), validateOnly=True)
    assert status == 200
    counters = await fcm_client.control.counters()
    assert "delivered" not in counters and counters["validated"]["total"] == 1


async def test_token_errors(fcm_client, fcm: FcmSandbox, session: aiohttp.ClientSession) -> None:
    async with session.post(
        fcm.url + "/_sandbox/fcm/tokens",
        json={"unregistered": ["gone:APA91b-dead-token"], "sender_id_mismatch": ["other:APA91b"]},
    ) as response:
        assert response.status == 200
    status, body = await fcm_client.send(simple("has spaces in it"))
    assert status == 400 and fcm_code(body) == "INVALID_ARGUMENT"
    violation = body["error"]["details"][1]["fieldViolations"][0]
    assert violation["field"] == "message.token" and "not a valid FCM" in violation["description"]
    for token in ("gone:APA91b-dead-token", "unregistered-by-prefix-01"):
        status, body = await fcm_client.send(simple(token))
        assert status == 404 and fcm_code(body) == "UNREGISTERED"
    status, body = await fcm_client.send(simple("other:APA91b"))
    assert status == 403 and fcm_code(body) == "SENDER_ID_MISMATCH"
    counters = await fcm_client.control.counters()
    assert counters["UNREGISTERED"]["total"] == 2 and "delivered" not in counters


async def test_device_and_project_quotas(fcm_client) -> None:
    await fcm_client.control.limits(device_per_min=2)
    statuses = [(await fcm_client.send(simple()))[0] for _ in range(3)]
    assert statuses == [200, 200, 429]
    status, body = await fcm_client.send(simple())
    assert status == 429
    assert fcm_code(body) == "QUOTA_EXCEEDED" and body["error"]["status"] == "RESOURCE_EXHAUSTED"
    await fcm_client.control.limits(device_per_min=240, project_per_min=1)
    assert (await fcm_client.send(simple("dev-2:APA91b-second")))[0] == 200
    assert (await fcm_client.send(simple("dev-3:APA91b-third")))[0] == 429
    await fcm_client.control.limits(enabled=False)
    assert (await fcm_client.send(simple("dev-3:APA91b-third")))[0] == 200


async def test_a_quota_answer_says_when_to_retry(fcm_client, session) -> None:
    await fcm_client.control.limits(project_per_min=0)
    async with session.post(
        f"{fcm_client.url}/v1/projects/{PROJECT}/messages:send",
        json={"message": simple()},
        headers={"Authorization": f"Bearer {fcm_client.token}"},
    ) as response:
        assert response.status == 429
        assert 1 <= int(response.headers["Retry-After"]) <= 60


async def test_injected_faults_look_like_fcm_5xx(fcm_client) -> None:
    await fcm_client.control.faults(error_share=1.0, error_status=503, seed=1)
    status, body = await fcm_client.send(simple())
    assert status == 503 and fcm_code(body) == "UNAVAILABLE"
    await fcm_client.control.faults(error_share=1.0, error_status=500)
    status, body = await fcm_client.send(simple())
    assert status == 500 and fcm_code(body) == "INTERNAL"


async def test_topics_and_conditions_reach_subscribers(fcm_client, session) -> None:
    auth = {"Authorization": f"Bearer {fcm_client.token}", "access_token_auth": "true"}
    async with session.post(
        fcm_client.url + "/iid/v1:batchAdd",
        json={"to": "/topics/city-mode", "registration_tokens": ["a:APA91b-1", "b:APA91b-2"]},
        headers=auth,
    ) as response:
        assert (await response.json())["results"] == [{}, {}]
    base = f"{fcm_client.url}/v1/projects/{PROJECT}/registrations"
    async with session.post(
        f"{base}/c%3AAPA91b-3/topicSubscriptions?topic_name=city-mode", json={}, headers=auth
    ) as response:
        assert response.status == 200
        assert (await response.json())["topicName"] == "city-mode"
    async with session.post(
        f"{base}/c%3AAPA91b-3/topicSubscriptions?topic_name=city-mode", json={}, headers=auth
    ) as response:
        assert response.status == 409
    async with session.post(
        f"{base}/a%3AAPA91b-1/topicSubscriptions?topic_name=ward-1", json={}, headers=auth
    ) as response:
        assert response.status == 200

    assert (await fcm_client.send({"topic": "city-mode", "data": {"mode": "disaster"}}))[0] == 200
    delivered = (await fcm_client.control.counters("delivered"))["delivered"]["by_recipient"]
    assert delivered == {"a:APA91b-1": 1, "b:APA91b-2": 1, "c:APA91b-3": 1}

    condition = "'city-mode' in topics && !('ward-1' in topics)"
    assert (await fcm_client.send({"condition": condition, "data": {"x": "1"}}))[0] == 200
    delivered = (await fcm_client.control.counters("delivered"))["delivered"]["by_recipient"]
    assert delivered == {"a:APA91b-1": 1, "b:APA91b-2": 2, "c:APA91b-3": 2}

    async with session.delete(
        f"{base}/c%3AAPA91b-3/topicSubscriptions/city-mode?allow_missing=true", headers=auth
    ) as response:
        assert response.status == 200
    async with session.get(f"{base}/a%3AAPA91b-1/topicSubscriptions", headers=auth) as response:
        names = [s["topicName"] for s in (await response.json())["topicSubscriptions"]]
    assert names == ["city-mode", "ward-1"]


def test_condition_parser() -> None:
    predicate, topics = parse_condition("'a' in topics && ('b' in topics || \"c\" in topics)")
    assert topics == {"a", "b", "c"}
    assert predicate({"a", "c"}) and not predicate({"a"}) and not predicate({"b", "c"})
    assert parse_condition("!('a' in topics)")[0](set())
    for bad in ("", "'a' in topics ||", "('a' in topics", "a in topics", "'a' in topics 'b'"):
        with pytest.raises(ConditionError):
            parse_condition(bad)
    six = " || ".join(f"'t{i}' in topics" for i in range(6))
    with pytest.raises(ConditionError):
        parse_condition(six)
