"""`python -m sandbox.line` runs the simulator as its own process."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import aiohttp

from sandbox.line import SANDBOX_TOKEN


async def test_the_simulator_runs_as_a_process(spec_dir) -> None:
    process = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "sandbox.line", "--port", "0", "--no-rate-limits"],
        *["--spec-dir", str(spec_dir), "--followers", "25"],
        stdout=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        started = json.loads(await asyncio.wait_for(process.stdout.readline(), 30))
        assert started["token"] == SANDBOX_TOKEN
        headers = {"Authorization": f"Bearer {SANDBOX_TOKEN}"}
        async with aiohttp.ClientSession(headers=headers) as session:
            body = {"messages": [{"type": "text", "text": "訓練"}]}
            async with session.post(started["url"] + "/v2/bot/message/broadcast", json=body) as r:
                assert r.status == 200
            async with session.get(started["url"] + "/_sandbox/stats") as r:
                assert (await r.json())["delivered"] == 25
    finally:
        process.terminate()
        assert await asyncio.wait_for(process.wait(), 10) == 0
