"""The shared sandbox machinery: faults, log, counters and control routes over real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from sandbox.common import (
    STATE_KEY,
    AppServer,
    SandboxControl,
    SandboxState,
    WindowLimiter,
    make_sandbox_app,
)


async def _echo(request: web.Request) -> web.Response:
    body = await request.json()
    request.app[STATE_KEY].counters.add("delivered", body["to"])
    return web.json_response({"ok": True})


@pytest.fixture
async def served() -> AsyncIterator[tuple[str, aiohttp.ClientSession, SandboxState]]:
    state = SandboxState(name="echo", limits={"enabled": True, "per_min": 10})
    app = make_sandbox_app(state)
    app.router.add_post("/send", _echo)
    server = AppServer(app)
    url = await server.start()
    async with aiohttp.ClientSession() as session:
        yield url, session, state
    await server.stop()


async def test_log_and_counters_are_readable_over_http(served) -> None:
    url, session, _ = served
    for to in ("a", "a", "b"):
        async with session.post(url + "/send", json={"to": to}) as r:
            assert r.status == 200
    control = SandboxControl(url, session)
    counters = await control.counters("delivered")
    assert counters["delivered"]["by_recipient"] == {"a": 2, "b": 1}
    assert counters["delivered"]["total"] == 3
    only_a = await control.counters("delivered", recipient="a")
    assert only_a["delivered"]["by_recipient"] == {"a": 2}
    log = await control.log(path="/send")
    assert [e["body"]["to"] for e in log] == ["a", "a", "b"]
    assert all(e["status"] == 200 for e in log)
    # A poller: the first N after the last seq it saw, oldest first.
    first = log[0]["seq"]
    assert [e["body"]["to"] for e in await control.log(after=first, limit=1)] == ["a"]
    assert [e["body"]["to"] for e in await control.log(after=first)] == ["a", "b"]
    assert await control.log(after=log[-1]["seq"]) == []
    async with session.get(url + "/_sandbox/log", params={"after": "x"}) as r:
        assert r.status == 400
    await control.reset()
    assert await control.counters() == {}
    assert await control.log() == []


async def test_the_log_describes_requests_when_read_and_keeps_no_big_body(served) -> None:
    """Entries are described on reading (method, query, headers without the bearer, body);
    a body over 64 KiB is kept as its size only, so 10,000 big uploads cost no memory."""
    url, session, state = served
    headers = {"Authorization": "Bearer secret", "X-Line-Retry-Key": "k1"}
    async with session.post(url + "/send?x=1", json={"to": "a"}, headers=headers) as r:
        assert r.status == 200
    big = b"x" * (100 * 1024)
    async with session.post(url + "/send", data=big, headers={"Content-Type": "text/plain"}):
        pass
    assert all("request" in e for e in state.log._entries)  # nothing described yet
    small, upload = await SandboxControl(url, session).log(path="/send")
    assert (small["method"], small["query"], small["body"]) == ("POST", "x=1", {"to": "a"})
    assert small["headers"]["x-line-retry-key"] == "k1" and "authorization" not in small["headers"]
    assert (upload["body"], upload["size"]) == (None, len(big))
    assert all("request" not in e for e in state.log._entries)


async def test_error_share_is_deterministic_with_a_seed(served) -> None:
    url, session, _ = served
    control = SandboxControl(url, session)

    async def run() -> list[int]:
        await control.faults(error_share=0.5, error_status=500, seed=7)
        statuses = []
        for _ in range(40):
            async with session.post(url + "/send", json={"to": "x"}) as r:
                statuses.append(r.status)
        return statuses

    first, second = await run(), await run()
    assert first == second
    assert 5 < first.count(500) < 35 and set(first) == {200, 500}
    # An injected error never reaches the handler, so it is not counted as delivered.
    assert (await control.counters("delivered"))["delivered"]["total"] == 2 * first.count(200)


async def test_timeout_hangs_past_the_client_timeout(served) -> None:
    url, session, _ = served
    control = SandboxControl(url, session)
    await control.faults(timeout_share=1.0, hang_s=5, paths=["/send"])
    with pytest.raises(asyncio.TimeoutError):
        async with session.post(
            url + "/send", json={"to": "x"}, timeout=aiohttp.ClientTimeout(total=0.3)
        ):
            pass
    # Control routes stay reachable while faults are on.
    assert (await control.log())[-1]["fault"] == "timeout"


async def test_slow_answers_add_latency(served) -> None:
    url, session, _ = served
    await SandboxControl(url, session).faults(slow_ms=150)
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with session.post(url + "/send", json={"to": "x"}) as r:
        assert r.status == 200
    assert loop.time() - started >= 0.14


async def test_bad_fault_and_limit_settings_are_rejected(served) -> None:
    url, session, state = served
    async with session.post(url + "/_sandbox/faults", json={"error_share": 2}) as r:
        assert r.status == 400
    async with session.post(url + "/_sandbox/faults", json={"nope": 1}) as r:
        assert r.status == 400
    async with session.post(url + "/_sandbox/limits", json={"unknown": 1}) as r:
        assert r.status == 400
    limits = await SandboxControl(url, session).limits(enabled=False)
    assert limits == {"enabled": False, "per_min": 10}
    await SandboxControl(url, session).reset()
    assert state.limits == {"enabled": True, "per_min": 10}


def test_window_limiter_counts_per_key() -> None:
    limiter = WindowLimiter()
    assert all(limiter.allow("k", 3, 60) for _ in range(3))
    assert not limiter.allow("k", 3, 60)
    assert limiter.allow("other", 3, 60)
    assert not limiter.allow("big", 3, 60, n=4)
