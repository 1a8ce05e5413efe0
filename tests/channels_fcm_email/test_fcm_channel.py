"""The FCM adapter against the FCM sandbox: what crossed the wire, and one result each."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from channels.base import Outcome, PushMessage, Recipient, SendContext
from channels.fcm import FcmChannel
from notify.errors import PermanentChannelError, RateLimited, TransientChannelError
from sandbox.runner import write_service_account

from .conftest import PROJECT

MESSAGE = PushMessage("お知らせ", "健診のご案内です。", {"broadcast": "7"})
CONTEXT = SendContext(broadcast_id=7)


def devices(*tokens: str) -> list[Recipient]:
    return [Recipient(endpoint_id=i, address=t) for i, t in enumerate(tokens, start=1)]


async def sent_bodies(control) -> list[dict]:
    return [e["body"] for e in await control.log(path="/v1/") if e.get("status") == 200]


async def test_a_batch_is_delivered_once_each_with_one_cached_token(channel, fcm_control) -> None:
    tokens = [f"dev-{i}:APA91b-token-{i:04d}" for i in range(30)]
    results = await channel.send_batch(devices(*tokens), MESSAGE, CONTEXT)
    results += await channel.send_batch(devices(*tokens[:5]), MESSAGE, CONTEXT)
    assert [r.outcome for r in results] == [Outcome.SENT] * 35
    assert all(r.provider_id and r.provider_id.startswith(f"projects/{PROJECT}/") for r in results)
    assert len({r.provider_id for r in results}) == 35
    counters = await fcm_control.counters()
    delivered = counters["delivered"]["by_recipient"]
    assert delivered == {t: (2 if i < 5 else 1) for i, t in enumerate(tokens)}
    assert counters["oauth_tokens"]["total"] == 1  # never one token per message
    body = (await sent_bodies(fcm_control))[0]
    assert body["message"]["notification"]["title"] == "お知らせ"
    assert body["message"]["android"]["priority"] == "normal"


async def test_results_follow_the_recipients_order(channel, fcm, session) -> None:
    async with session.post(
        fcm.url + "/_sandbox/fcm/tokens",
        json={"unregistered": ["gone:APA91b-x"], "sender_id_mismatch": ["other:APA91b-y"]},
    ):
        pass
    tokens = ["ok-1:APA91b-aaaa", "gone:APA91b-x", "bad token!", "other:APA91b-y", "ok-2:APA91b"]
    results = await channel.send_batch(devices(*tokens), MESSAGE, CONTEXT)
    summary = [(r.outcome, r.error_code, r.prune) for r in results]
    assert summary == [
        (Outcome.SENT, None, False),
        (Outcome.PERMANENT, "UNREGISTERED", True),
        (Outcome.PERMANENT, "INVALID_ARGUMENT", True),
        (Outcome.PERMANENT, "SENDER_ID_MISMATCH", True),
        (Outcome.SENT, None, False),
    ]


async def test_an_invalid_payload_fails_without_pruning(channel) -> None:
    message = PushMessage("t", "b", {"from": "reserved key"})
    results = await channel.send_batch(devices("ok:APA91b-1234"), message, CONTEXT)
    assert results[0].outcome is Outcome.PERMANENT
    assert results[0].error_code == "INVALID_ARGUMENT" and not results[0].prune


async def test_quota_stops_the_batch_with_a_backoff_hint(fcm, account, fcm_control) -> None:
    await fcm_control.limits(project_per_min=2)
    adapter = FcmChannel(
        api_url=fcm.url, project_id=PROJECT, credentials_file=account.path, concurrency=1
    )
    try:
        tokens = [f"d{i}:APA91b-{i:04d}" for i in range(6)]
        results = await adapter.send_batch(devices(*tokens), MESSAGE, CONTEXT)
    finally:
        await adapter.close()
    assert [r.outcome for r in results] == [Outcome.SENT] * 2 + [Outcome.TRANSIENT] * 4
    assert {r.error_code for r in results[2:]} == {"QUOTA_EXCEEDED"}
    assert all(r.retry_after_s and 0 < r.retry_after_s <= 60 for r in results[2:])
    # After the first 429 the rest of the batch is not sent at all.
    assert len(await fcm_control.log(path="/v1/")) == 3


@pytest.mark.parametrize(("status", "code"), [(503, "UNAVAILABLE"), (500, "INTERNAL")])
async def test_server_errors_are_transient(channel, fcm_control, status: int, code: str) -> None:
    await fcm_control.faults(error_share=1.0, error_status=status, paths=["/v1/"])
    results = await channel.send_batch(devices("a:APA91b-1", "b:APA91b-2"), MESSAGE, CONTEXT)
    assert [(r.outcome, r.error_code) for r in results] == [(Outcome.TRANSIENT, code)] * 2
    assert "delivered" not in await fcm_control.counters()


async def test_a_hung_request_times_out_as_transient(fcm, account, fcm_control) -> None:
    adapter = FcmChannel(
        api_url=fcm.url, project_id=PROJECT, credentials_file=account.path, timeout_s=0.5
    )
    try:
        await adapter.send_batch(devices("warm:APA91b-1"), MESSAGE, CONTEXT)  # token fetched
        await fcm_control.faults(timeout_share=1.0, hang_s=5, paths=["/v1/"])
        results = await adapter.send_batch(devices("a:APA91b-1"), MESSAGE, CONTEXT)
    finally:
        await adapter.close()
    assert (results[0].outcome, results[0].error_code) == (Outcome.TRANSIENT, "TIMEOUT")


async def test_a_refused_access_token_is_fetched_again_once(channel, fcm, fcm_control) -> None:
    await channel.send_batch(devices("a:APA91b-1"), MESSAGE, CONTEXT)
    fcm.world.oauth.issued.clear()  # the provider forgets every token it gave out
    results = await channel.send_batch(devices("a:APA91b-1"), MESSAGE, CONTEXT)
    assert results[0].outcome is Outcome.SENT
    assert (await fcm_control.counters("oauth_tokens"))["oauth_tokens"]["total"] == 2


async def test_emergency_context_raises_priority(channel, fcm_control) -> None:
    context = SendContext(broadcast_id=8, emergency=True)
    await channel.send_batch(devices("a:APA91b-1"), MESSAGE, context)
    message = (await sent_bodies(fcm_control))[0]["message"]
    assert message["android"]["priority"] == "high"
    assert message["apns"]["headers"]["apns-priority"] == "10"


async def test_refused_credentials_fail_the_whole_call(fcm, tmp_path: Path) -> None:
    fcm.world.oauth.strict_keys = True
    unknown = write_service_account(tmp_path / "unknown.json", fcm.token_uri, PROJECT)
    adapter = FcmChannel(api_url=fcm.url, project_id=PROJECT, credentials_file=unknown.path)
    try:
        with pytest.raises(PermanentChannelError, match="credentials refused"):
            await adapter.send_batch(devices("a:APA91b-1"), MESSAGE, CONTEXT)
    finally:
        await adapter.close()


async def test_an_unreachable_token_endpoint_is_transient(fcm, tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    account = write_service_account(
        tmp_path / "sa.json", f"http://127.0.0.1:{closed_port}/token", PROJECT
    )
    adapter = FcmChannel(api_url=fcm.url, project_id=PROJECT, credentials_file=account.path)
    try:
        with pytest.raises(TransientChannelError):
            await adapter.send_batch(devices("a:APA91b-1"), MESSAGE, CONTEXT)
    finally:
        await adapter.close()


async def test_a_failing_token_endpoint_is_transient(channel, fcm_control) -> None:
    await fcm_control.faults(error_share=1.0, error_status=503, paths=["/token"])
    with pytest.raises(TransientChannelError, match="token endpoint"):
        await channel.send_batch(devices("a:APA91b-1"), MESSAGE, CONTEXT)


async def test_send_data_to_topic(channel, fcm, session, fcm_control) -> None:
    subscribers = ["a:APA91b-1", "b:APA91b-2", "unregistered-c-0001"]
    async with session.post(
        fcm.url + "/_sandbox/fcm/topics", json={"topic": "city-mode", "tokens": subscribers}
    ):
        pass
    name = await channel.send_data_to_topic("city-mode", {"mode": "disaster"})
    assert name.startswith(f"projects/{PROJECT}/messages/")
    delivered = (await fcm_control.counters("delivered"))["delivered"]["by_recipient"]
    assert delivered == {"a:APA91b-1": 1, "b:APA91b-2": 1}
    sent = (await sent_bodies(fcm_control))[0]["message"]
    assert sent["topic"] == "city-mode" and sent["data"] == {"mode": "disaster"}

    await fcm_control.faults(error_share=1.0, error_status=503, paths=["/v1/"])
    with pytest.raises(TransientChannelError):
        await channel.send_data_to_topic("city-mode", {"mode": "normal"})
    await fcm_control.faults()
    await fcm_control.limits(project_per_min=0)
    with pytest.raises(RateLimited) as limited:
        await channel.send_data_to_topic("city-mode", {"mode": "normal"})
    assert limited.value.retry_after_s is not None


async def test_too_big_a_batch_is_refused(channel) -> None:
    from notify.errors import InvalidInput

    with pytest.raises(InvalidInput):
        await channel.send_batch(devices(*["t:12345678"] * 501), MESSAGE, CONTEXT)


def test_limits_are_declared() -> None:
    assert FcmChannel.max_batch == 500 and FcmChannel.supports_title
    assert FcmChannel.max_body_chars * 3 + FcmChannel.max_title_chars * 3 < 4096
    assert json.dumps(FcmChannel.name) == '"fcm"'
