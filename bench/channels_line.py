"""LINE multicast throughput: the channel adapter against plain aiohttp requests.

Both clients send the same multicasts (500 user ids, one text message, a fresh retry key
each) to the same sandbox, which runs in its own process with rate limits off, so the CPU
measured here (`time.process_time()` of this process) is the client's alone.

    python -m bench channels_line --requests 6000 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from bench.channels_fcm import summary
from channels.base import LineMessage, Recipient, SendContext
from channels.line import LineChannel
from sandbox.line import SANDBOX_TOKEN

BATCH = 500
MESSAGE = LineMessage(messages=({"type": "text", "text": "【川崎市】大雨警報が発表されました。"},))


@asynccontextmanager
async def sandbox_process(port: int = 0) -> AsyncIterator[str]:
    """`python -m sandbox.line` in a child process; yields its URL."""
    command = [sys.executable, "-m", "sandbox.line", "--port", str(port), "--no-rate-limits"]
    command += ["--log-size", "100"]
    process = await asyncio.create_subprocess_exec(*command, stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        if not line:
            raise RuntimeError("the LINE sandbox did not start")
        yield str(json.loads(line)["url"])
    finally:
        process.terminate()
        await process.wait()


async def _reset(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{url}/_sandbox/reset") as response:
            response.raise_for_status()


def _user_ids(n_requests: int) -> list[list[str]]:
    return [[f"U{(r * BATCH + i):032x}" for i in range(BATCH)] for r in range(n_requests)]


async def _run(n_requests: int, concurrency: int, send: Callable[[int], Awaitable[int]]) -> dict:
    """Send `n_requests` with `concurrency` workers; returns wall seconds, CPU seconds, sent."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(n_requests):
        queue.put_nowait(index)
    sent = 0

    async def worker() -> None:
        nonlocal sent
        while not queue.empty():
            accepted = await send(queue.get_nowait())
            sent += accepted  # not `sent += await ...`: that reads `sent` before the await

    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu, "sent": sent}


async def _bare(url: str, batches: list[list[str]], concurrency: int) -> dict:
    connector = aiohttp.TCPConnector(limit=concurrency)
    headers = {"Authorization": f"Bearer {SANDBOX_TOKEN}"}
    messages = [dict(m) for m in MESSAGE.messages]
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def send(index: int) -> int:
            body = {"to": batches[index], "messages": messages}
            retry = {"X-Line-Retry-Key": str(uuid.uuid4())}
            async with session.post(
                f"{url}/v2/bot/message/multicast", json=body, headers=retry
            ) as r:
                await r.read()
                return len(batches[index]) if r.status == 200 else 0

        return await _run(len(batches), concurrency, send)


async def _adapter(url: str, batches: list[list[str]], concurrency: int) -> dict:
    channel = LineChannel(
        api_url=url, data_url=url, channel_access_token=SANDBOX_TOKEN, max_connections=concurrency
    )
    recipients = [
        [Recipient(endpoint_id=i, address=user_id) for i, user_id in enumerate(batch)]
        for batch in batches
    ]
    try:

        async def send(index: int) -> int:
            context = SendContext(broadcast_id=1, idempotency_key=str(uuid.uuid4()))
            results = await channel.send_batch(recipients[index], MESSAGE, context)
            return results.count(results[0]) if results[0].outcome == "sent" else 0

        await channel.messaging()  # build the SDK clients first, as `_bare` opens its session
        return await _run(len(batches), concurrency, send)
    finally:
        await channel.close()


async def measure(
    n_requests: int = 6000, *, concurrency: int = 16, rounds: int = 30, url: str | None = None
) -> dict[str, Any]:
    """Messages (= recipients) per second and client CPU per message, adapter vs bare.

    The requests are split into `rounds`; each round runs both clients, in alternating order
    (bare/adapter, adapter/bare, ...), each against a freshly reset sandbox, so a noisy
    neighbour on the machine or a warming sandbox weighs on both alike. A multicast takes
    about a millisecond: 2,000 of them (one second per client) gave ratios from 0.63 to
    1.03 on this VM, 6,000 in 30 rounds gave 0.94 to 1.0.
    """
    if url is None:
        async with sandbox_process() as started:
            return await measure(n_requests, concurrency=concurrency, rounds=rounds, url=started)
    batches = _user_ids(n_requests)
    warm = batches[: max(concurrency, 10)]
    await _bare(url, warm, concurrency)
    await _adapter(url, warm, concurrency)
    totals = {name: {"wall_s": 0.0, "cpu_s": 0.0, "sent": 0} for name in ("bare", "adapter")}
    per_round = max(n_requests // rounds, 1)
    for index in range(rounds):
        chunk = batches[index * per_round : (index + 1) * per_round]
        order = [("bare", _bare), ("adapter", _adapter)]
        for name, run in order if index % 2 == 0 else order[::-1]:
            await _reset(url)  # every run meets a sandbox that has seen none of its ids
            result = await run(url, chunk, concurrency)
            for key in ("wall_s", "cpu_s", "sent"):
                totals[name][key] += result[key]
    total = per_round * rounds * BATCH
    for name, run_totals in totals.items():
        if run_totals["sent"] != total:
            raise RuntimeError(f"{name}: {run_totals['sent']} of {total} messages accepted")
    bare, adapter = totals["bare"], totals["adapter"]
    adapter_rate, bare_rate = total / adapter["wall_s"], total / bare["wall_s"]
    return {
        "adapter_per_s": round(adapter_rate),
        "bare_per_s": round(bare_rate),
        "ratio": round(adapter_rate / bare_rate, 3),
        "adapter_cpu_ms_per_msg": round(adapter["cpu_s"] * 1000 / total, 5),
        "bare_cpu_ms_per_msg": round(bare["cpu_s"] * 1000 / total, 5),
        "requests": per_round * rounds,
        "batch": BATCH,
        "concurrency": concurrency,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench channels_line")
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args(argv)
    result = asyncio.run(measure(args.requests, concurrency=args.concurrency, rounds=args.rounds))
    if not args.json:
        print(summary("LINE multicast", result))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
