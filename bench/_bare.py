"""Bare clients: what plain aiohttp / aiosmtplib reach against the same sandbox, with no hub
in between (no database, no queue, no rendering, one pre-built message). The delivery
benchmarks divide the hub's throughput by these to get `bare_ratio`.

`HubBodies.read` takes one request of each channel from the sandbox after the hub's run, so
the bare clients send the very content the hub sent (a push with the hub's data fields, a
mail with its HTML part and headers): the ratio then measures the hub's own overhead, not
the difference between a short test text and the broadcast. Without it they send a short
built-in message."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiohttp
import aiosmtplib

from channels.fcm_auth import GoogleTokenSource

LINE_TEXT = {"type": "text", "text": "【川崎市】大雨に関するお知らせ\n\n大雨に備えてください。"}
FCM_NOTIFICATION = {"title": "【川崎市】大雨に関するお知らせ", "body": "大雨に備えてください。"}


def _short_mail() -> bytes:
    mime = EmailMessage(policy=policy.SMTP)
    mime["From"], mime["Subject"] = "info@city.example.jp", "【川崎市】大雨に関するお知らせ"
    mime.set_content("大雨に備えてください。")
    return mime.as_bytes()


@dataclass(frozen=True, slots=True)
class HubBodies:
    """What the bare clients send: LINE `messages`, the FCM `message` (its token replaced per
    send), and one raw mail (the same bytes to every address)."""

    line_messages: list[Any] = field(default_factory=lambda: [LINE_TEXT])
    fcm_message: dict[str, Any] = field(default_factory=lambda: {"notification": FCM_NOTIFICATION})
    mail: bytes = field(default_factory=_short_mail)
    source: str = "short"

    @classmethod
    async def read(cls, info: Mapping[str, Any]) -> HubBodies:
        """The hub's last request of each channel, from the sandboxes' logs."""
        async with aiohttp.ClientSession(raise_for_status=True) as session:

            async def last_body(base: str, path: str) -> dict[str, Any]:
                url = f"{base}/_sandbox/log"
                async with session.get(url, params={"path": path, "limit": "1"}) as response:
                    entries = (await response.json())["entries"]
                if not entries or not isinstance(entries[0].get("body"), dict):
                    raise RuntimeError(f"the sandbox logged no request body under {path}")
                body: dict[str, Any] = entries[0]["body"]
                return body

            line = await last_body(info["line"]["url"], "/v2/bot/message/multicast")
            fcm = await last_body(info["fcm"]["url"], "/v1/projects/")
            control = info["smtp"]["control_url"].rstrip("/")
            async with session.get(f"{control}/_sandbox/smtp/messages?limit=1") as response:
                newest = (await response.json())["messages"]
            if not newest:
                raise RuntimeError("the SMTP sandbox kept no message")
            async with session.get(
                f"{control}/_sandbox/smtp/messages/{newest[0]['id']}/raw"
            ) as response:
                mail = await response.read()
        return cls(line["messages"], fcm["message"], mail, source="hub")


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


async def line(
    url: str, requests: int, *, concurrency: int = 16, bodies: HubBodies | None = None
) -> dict[str, float]:
    """Multicasts of 500 fresh ids each; `per_s` counts recipients."""
    messages = (bodies or HubBodies()).line_messages
    batches = [[f"U{(r * 500 + i):032x}" for i in range(500)] for r in range(requests)]
    headers = {"Authorization": "Bearer sandbox-line-channel-access-token"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def send(i: int) -> int:
            body = {"to": batches[i], "messages": messages}
            retry = {"X-Line-Retry-Key": str(uuid.uuid4())}
            async with session.post(
                f"{url}/v2/bot/message/multicast", json=body, headers=retry
            ) as response:
                await response.read()
                return 500 if response.status == 200 else 0

        return await _timed(lambda: _pool(requests, concurrency, send))


async def fcm(
    info: Mapping[str, Any],
    messages: int,
    *,
    concurrency: int = 100,
    bodies: HubBodies | None = None,
) -> dict[str, float]:
    """`concurrency`: the bare client's best here (20,000 messages, two rounds: 50 →
    8,550–8,790/s, 100 → 9,900–11,000/s, 200 → 6,740–9,000/s)."""
    message = (bodies or HubBodies()).fcm_message
    token = await GoogleTokenSource(Path(info["credentials_file"])).token()
    url = f"{info['url']}/v1/projects/{info['project_id']}/messages:send"
    connector = aiohttp.TCPConnector(limit=concurrency)
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def send(i: int) -> int:
            body = {"message": {**message, "token": f"bare{i:08d}:APA91b-bare"}}
            async with session.post(url, json=body) as response:
                await response.read()
                return int(response.status == 200)

        return await _timed(lambda: _pool(messages, concurrency, send))


async def email(
    info: Mapping[str, Any],
    messages: int,
    *,
    connections: int = 8,
    bodies: HubBodies | None = None,
) -> dict[str, float]:
    """`connections`: the bare client's best here (6,000 messages each, two rounds: 2 →
    1,470–1,580/s, 4 → 1,850–1,950/s, 8 → 2,080–2,230/s)."""
    raw = (bodies or HubBodies()).mail

    async def stripe(k: int) -> int:
        async with aiosmtplib.SMTP(hostname=info["host"], port=info["port"]) as client:
            for i in range(k, messages, connections):
                await client.sendmail("bounces@city.example.jp", [f"bare{i}@example.jp"], raw)
        return len(range(k, messages, connections))

    async def run() -> int:
        return sum(await asyncio.gather(*(stripe(k) for k in range(connections))))

    return await _timed(run)
