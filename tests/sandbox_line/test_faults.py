"""Fault injection over the control routes, as workers in other processes would use it."""

from __future__ import annotations

import asyncio
import time
import uuid

import aiohttp

from .helpers import Line, user


async def test_forced_errors_fail_the_next_requests_only(line: Line) -> None:
    await line.control(
        "POST", "faults/next", json={"count": 2, "status": 503, "paths": ["/v2/bot/message"]}
    )
    assert (await line.call("GET", "/v2/bot/richmenu/list"))[0] == 200  # another path
    assert (await line.multicast([user(1)]))[0] == 503
    status, headers, body = await line.multicast([user(1)])
    assert status == 503 and "x-line-request-id" in headers
    assert body == {"message": "Internal server error"}
    assert (await line.multicast([user(1)]))[0] == 200
    assert await line.delivered() == {user(1): 1}
    log = (await line.control("GET", "log", params={"path": "/v2/bot/message"}))["entries"]
    assert [e.get("fault") for e in log] == ["error", "error", None]


async def test_error_after_acceptance_makes_the_retry_a_409(line: Line) -> None:
    await line.control("POST", "faults/next", json={"status": 500, "after_accept": True})
    key = {"X-Line-Retry-Key": str(uuid.uuid4())}
    status, first, _ = await line.multicast([user(1), user(2)], headers=key)
    assert status == 500  # the client cannot tell it went out...
    status, headers, _ = await line.multicast([user(1), user(2)], headers=key)
    assert status == 409  # ...and the retry says so
    assert headers["x-line-accepted-request-id"] == first["x-line-request-id"]
    assert await line.delivered() == {user(1): 1, user(2): 1}


async def test_timeout_hangs_then_answers_504(line: Line) -> None:
    await line.control("POST", "faults/next", json={"kind": "timeout", "hang_s": 0.3})
    started = time.perf_counter()
    status, _, _ = await line.multicast([user(1)])
    assert status == 504 and time.perf_counter() - started >= 0.3
    assert await line.delivered() == {}


async def test_client_timeout_against_a_hang(line: Line) -> None:
    await line.control("POST", "faults/next", json={"kind": "timeout", "hang_s": 5})
    timeout = aiohttp.ClientTimeout(total=0.2)
    try:
        await line.call("POST", "/v2/bot/message/multicast", json={}, timeout=timeout)
    except TimeoutError:
        pass
    else:
        raise AssertionError("the hang did not time the client out")


async def test_disconnect_drops_the_connection(line: Line) -> None:
    await line.control("POST", "faults/next", json={"kind": "disconnect"})
    try:
        await line.multicast([user(1)])
    except aiohttp.ServerDisconnectedError:
        pass
    else:
        raise AssertionError("the connection was not dropped")
    assert (await line.multicast([user(1)]))[0] == 200


async def test_shared_random_faults_and_slow_answers(line: Line) -> None:
    await line.control("POST", "faults", json={"error_share": 1.0, "error_status": 502, "seed": 1})
    assert (await line.multicast([user(1)]))[0] == 502
    await line.control("POST", "faults", json={"slow_ms": 200, "slow_share": 1.0})
    started = time.perf_counter()
    assert (await line.multicast([user(1)]))[0] == 200
    assert time.perf_counter() - started >= 0.2
    await line.control("POST", "faults", json={})
    assert (await line.multicast([user(1)]))[0] == 200


async def test_bad_fault_settings_are_refused(line: Line) -> None:
    async with line.session.post(
        line.url + "/_sandbox/faults/next", json={"kind": "explode"}
    ) as response:
        assert response.status == 400
    async with line.session.post(line.url + "/_sandbox/config", json={"nope": 1}) as response:
        assert response.status == 400


async def test_reset_clears_state_faults_and_clock(line: Line) -> None:
    await line.multicast([user(1)], headers={"X-Line-Retry-Key": str(uuid.uuid4())})
    await line.control("POST", "blocked", json={"add": [user(2)]})
    await line.control("POST", "faults/next", json={"count": 3})
    await line.control("POST", "clock", json={"advance_s": 10})
    await line.control("POST", "config", json={"open_probability": 0.0})
    await line.control("POST", "reset")
    assert await line.delivered() == {}
    stats = await line.control("GET", "stats")
    assert (stats["blocked"], stats["retryKeys"], stats["delivered"]) == (0, 0, 0)
    assert (await line.control("GET", "config"))["open_probability"] == 0.5
    assert (await line.multicast([user(2)]))[0] == 200
    assert line.sandbox.clock.offset_s == 0.0


async def test_stop_cancels_a_hanging_request(line: Line) -> None:
    await line.control("POST", "faults/next", json={"kind": "timeout", "hang_s": 60})
    pending = asyncio.ensure_future(line.multicast([user(1)]))
    await asyncio.sleep(0.1)
    started = time.perf_counter()
    await line.sandbox.stop()
    assert time.perf_counter() - started < 5
    try:
        await pending
    except aiohttp.ClientError:
        pass
