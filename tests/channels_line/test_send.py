"""send_batch against the simulator: one result per recipient for every answer LINE gives."""

from __future__ import annotations

import uuid

import pytest

from channels.base import LineMessage, Outcome, SendContext
from channels.line import LineChannel
from notify.errors import PermanentChannelError, RateLimited
from sandbox.line import SANDBOX_TOKEN, LineSandbox

from .helpers import TEXT, Line, recipients, users


def context(unit: str | None = None) -> SendContext:
    return SendContext(broadcast_id=9, idempotency_key=str(uuid.uuid4()), aggregation_unit=unit)


async def test_sent_results_carry_the_request_id(channel: LineChannel, line: Line) -> None:
    ctx = context("bc9_ward1")
    results = await channel.send_batch(recipients(users(500)), TEXT, ctx)
    [entry] = (await line.control("GET", "log", params={"path": "/v2/bot/message"}))["entries"]
    assert len(results) == 500
    assert all(r.outcome is Outcome.SENT for r in results)
    assert {r.provider_id for r in results} == {entry["request_id"]}
    assert entry["headers"]["x-line-retry-key"] == ctx.idempotency_key
    assert entry["body"]["customAggregationUnits"] == ["bc9_ward1"]
    assert await line.delivered() == dict.fromkeys(users(500), 1)


async def test_retry_after_a_hidden_acceptance_is_sent_once(
    channel: LineChannel, line: Line
) -> None:
    await line.control("POST", "faults/next", json={"status": 503, "after_accept": True})
    ctx = context()
    first = await channel.send_batch(recipients(users(4)), TEXT, ctx)
    assert [r.outcome for r in first] == [Outcome.TRANSIENT] * 4
    assert first[0].error_code == "http_503"
    again = await channel.send_batch(recipients(users(4)), TEXT, ctx)  # same key: the retry
    log = (await line.control("GET", "log", params={"path": "/v2/bot/message"}))["entries"]
    assert [e["status"] for e in log] == [503, 409]
    assert [r.outcome for r in again] == [Outcome.SENT] * 4
    assert {r.provider_id for r in again} == {log[0]["request_id"]}  # the accepted request
    assert await line.delivered() == dict.fromkeys(users(4), 1)


async def test_timeout_is_transient_and_the_retry_is_not_a_duplicate(
    sandbox: LineSandbox, line: Line
) -> None:
    channel = LineChannel(
        api_url=sandbox.url, data_url=sandbox.url, channel_access_token=SANDBOX_TOKEN, timeout_s=0.3
    )
    try:
        await line.control(
            "POST", "faults/next", json={"kind": "timeout", "hang_s": 5, "after_accept": True}
        )
        ctx = context()
        first = await channel.send_batch(recipients(users(2)), TEXT, ctx)
        assert [(r.outcome, r.error_code) for r in first] == [(Outcome.TRANSIENT, "timeout")] * 2
        again = await channel.send_batch(recipients(users(2)), TEXT, ctx)
        assert [r.outcome for r in again] == [Outcome.SENT] * 2
        assert await line.delivered() == dict.fromkeys(users(2), 1)
    finally:
        await channel.close()


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_server_errors_are_transient_for_everyone(
    channel: LineChannel, line: Line, status: int
) -> None:
    await line.control("POST", "faults/next", json={"status": status})
    results = await channel.send_batch(recipients(users(3)), TEXT, context())
    assert [(r.outcome, r.error_code) for r in results] == [
        (Outcome.TRANSIENT, f"http_{status}")
    ] * 3
    assert await line.delivered() == {}


async def test_a_dropped_connection_is_transient(channel: LineChannel, line: Line) -> None:
    await line.control("POST", "faults/next", json={"kind": "disconnect"})
    results = await channel.send_batch(recipients(users(2)), TEXT, context())
    assert [(r.outcome, r.error_code) for r in results] == [(Outcome.TRANSIENT, "connection")] * 2


async def test_rate_limit_raises_for_the_whole_call(channel: LineChannel, line: Line) -> None:
    await line.control("POST", "limits", json={"multicast": [1, 60]})
    await channel.send_batch(recipients(users(1)), TEXT, context())
    with pytest.raises(RateLimited) as caught:
        await channel.send_batch(recipients(users(1)), TEXT, context())
    assert caught.value.retry_after_s is None  # LINE sends no Retry-After
    assert caught.value.provider_code == "rate_limited"


async def test_a_bad_message_is_permanent_without_pruning(channel: LineChannel) -> None:
    too_long = LineMessage(messages=({"type": "text", "text": "あ" * 5001},))
    results = await channel.send_batch(recipients(users(3)), too_long, context())
    assert [(r.outcome, r.prune) for r in results] == [(Outcome.PERMANENT, False)] * 3
    assert results[0].error_code == "http_400"
    assert results[0].detail == (
        "LINE 400: The request body has 1 error(s)"
        " (messages[0].text: Length must be between 1 and 5000)"
    )


async def test_a_message_the_sdk_refuses_is_permanent(channel: LineChannel, line: Line) -> None:
    unknown = LineMessage(messages=({"type": "hologram", "text": "x"},))
    results = await channel.send_batch(recipients(users(2)), unknown, context())
    assert [(r.outcome, r.error_code) for r in results] == [(Outcome.PERMANENT, "client")] * 2
    assert (await line.control("GET", "log"))["entries"] == []  # nothing was sent


async def test_invalid_user_ids_are_pruned_and_the_rest_retried(
    channel: LineChannel, line: Line
) -> None:
    ids = [*users(2), "Ubad", *users(1, start=2), "not-a-line-id"]
    results = await channel.send_batch(recipients(ids), TEXT, context())
    assert [(r.outcome, r.prune) for r in results] == [
        (Outcome.TRANSIENT, False),
        (Outcome.TRANSIENT, False),
        (Outcome.PERMANENT, True),
        (Outcome.TRANSIENT, False),
        (Outcome.PERMANENT, True),
    ]
    assert results[2].error_code == "invalid_user_id"


async def test_bad_token_raises_and_prunes_nobody(sandbox: LineSandbox) -> None:
    channel = LineChannel(api_url=sandbox.url, data_url=sandbox.url, channel_access_token="nope")
    try:
        with pytest.raises(PermanentChannelError) as caught:
            await channel.send_batch(recipients(users(2)), TEXT, context())
        assert caught.value.provider_code == "http_401"
    finally:
        await channel.close()


async def test_forbidden_raises(channel: LineChannel, line: Line) -> None:
    await line.control("POST", "faults/next", json={"status": 403})
    with pytest.raises(PermanentChannelError) as caught:
        await channel.send_batch(recipients(users(2)), TEXT, context())
    assert caught.value.provider_code == "http_403"


@pytest.mark.parametrize("status", [404, 413, 415])
async def test_other_client_errors_are_permanent(
    channel: LineChannel, line: Line, status: int
) -> None:
    await line.control("POST", "faults/next", json={"status": status})
    results = await channel.send_batch(recipients(users(2)), TEXT, context())
    assert [(r.outcome, r.prune) for r in results] == [(Outcome.PERMANENT, False)] * 2


async def test_blocked_users_look_sent(channel: LineChannel, line: Line) -> None:
    await line.control("POST", "blocked", json={"add": [users(1)[0]]})
    results = await channel.send_batch(recipients(users(3)), TEXT, context())
    assert [r.outcome for r in results] == [Outcome.SENT] * 3  # LINE does not say who blocked
    assert await line.delivered() == dict.fromkeys(users(2, start=1), 1)


async def test_connection_refused_is_transient(sandbox: LineSandbox) -> None:
    url = sandbox.url
    await sandbox.stop()
    channel = LineChannel(api_url=url, data_url=url, channel_access_token=SANDBOX_TOKEN)
    try:
        results = await channel.send_batch(recipients(users(2)), TEXT, context())
        assert [(r.outcome, r.error_code) for r in results] == [
            (Outcome.TRANSIENT, "connection")
        ] * 2
    finally:
        await channel.close()
