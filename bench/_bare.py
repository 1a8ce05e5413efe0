"""Bare clients: what plain aiohttp / aiosmtplib reach against the same sandbox, with no hub
in between (no database, no queue, no rendering, one pre-built message). The delivery
benchmarks divide the hub's throughput by these to get `bare_ratio`."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiohttp
import aiosmtplib

from channels.fcm_auth import GoogleTokenSource

LINE_TEXT = {"type": "text", "text": "【川崎市】大雨に関するお知らせ\n\n大雨に備えてください。"}
FCM_NOTIFICATION = {"title": "【川崎市】大雨に関するお知らせ", "body": "大雨に備えてください。"}


async def _timed(run: Callable[[], Awaitable[int]]) -> dict[str, float]:
    started = time.perf_counter()
    sent = await run()
    wall = time.perf_counter() - started
    return {"sent": sent, "wall_s": round(wall, 3), "per_s": round(sent / wall, 1)}


async def _pool(n: int, concurrency: int, send: Callable[[int], Awaitable[int]]) -> int:
    pending = iter(range(n))

    async def worker() -> int:
        return sum([await send(i) for i in pending])

    return sum(await asyncio.gather(*(worker() for _ in range(concurrency))))


async def line(url: str, requests: int, *, concurrency: int = 16) -> dict[str, float]:
    """Multicasts of 500 fresh ids each; `per_s` counts recipients."""
    batches = [[f"U{(r * 500 + i):032x}" for i in range(500)] for r in range(requests)]
    headers = {"Authorization": "Bearer sandbox-line-channel-access-token"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def send(i: int) -> int:
            body = {"to": batches[i], "messages": [LINE_TEXT]}
            retry = {"X-Line-Retry-Key": str(uuid.uuid4())}
            async with session.post(
                f"{url}/v2/bot/message/multicast", json=body, headers=retry
            ) as response:
                await response.read()
                return 500 if response.status == 200 else 0

        return await _timed(lambda: _pool(requests, concurrency, send))


async def fcm(
    info: Mapping[str, Any], messages: int, *, concurrency: int = 100
) -> dict[str, float]:
    token = await GoogleTokenSource(Path(info["credentials_file"])).token()
    url = f"{info['url']}/v1/projects/{info['project_id']}/messages:send"
    connector = aiohttp.TCPConnector(limit=concurrency)
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def send(i: int) -> int:
            body = {
                "message": {"token": f"bare{i:08d}:APA91b-bare", "notification": FCM_NOTIFICATION}
            }
            async with session.post(url, json=body) as response:
                await response.read()
                return int(response.status == 200)

        return await _timed(lambda: _pool(messages, concurrency, send))


async def email(
    info: Mapping[str, Any], messages: int, *, connections: int = 2
) -> dict[str, float]:
    mime = EmailMessage(policy=policy.SMTP)
    mime["From"], mime["Subject"] = "info@city.example.jp", "【川崎市】大雨に関するお知らせ"
    mime.set_content("大雨に備えてください。")
    raw = mime.as_bytes()

    async def stripe(k: int) -> int:
        async with aiosmtplib.SMTP(hostname=info["host"], port=info["port"]) as client:
            for i in range(k, messages, connections):
                await client.sendmail("bounces@city.example.jp", [f"bare{i}@example.jp"], raw)
        return len(range(k, messages, connections))

    async def run() -> int:
        return sum(await asyncio.gather(*(stripe(k) for k in range(connections))))

    return await _timed(run)
