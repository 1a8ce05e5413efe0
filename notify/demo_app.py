"""Demo mode only: the city app on the demo's phones, so app opens are real requests too.

The demo city's app devices are loaded in bulk without credentials; here each gets one
(derived from the hub's secret, so it survives a restart) as if it had registered through
`POST /api/app/devices`. A background task then watches what reached the phones — the FCM
sandbox's request log, the wire-level truth — and a share of the "users" open the
notification a few seconds later: the app posts the push's `open_ref` to `POST /api/app/opens`
with its device credential, exactly as the real app does. Never used outside the demo.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import random
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import select, update

from notify.db import Database
from notify.models import Endpoint
from notify.settings import Settings
from notify.web.auth import device_credential, hash_token

log = logging.getLogger(__name__)

OPEN_SHARE = 0.3  # of delivered pushes, opened by the demo's users
POLL_S = 2.0


def _secret(settings: Settings, endpoint_id: int) -> str:
    key = settings.resolved_secret().encode()
    return hmac.new(key, f"demo-device:{endpoint_id}".encode(), hashlib.sha256).hexdigest()


async def provision_devices(settings: Settings, db: Database) -> dict[str, str]:
    """FCM token → device credential for every demo app device (credentials set once)."""
    async with db.transaction() as session:
        rows = (
            await session.execute(
                select(Endpoint.id, Endpoint.address, Endpoint.secret_hash).where(
                    Endpoint.channel == "fcm"
                )
            )
        ).all()
        credentials: dict[str, str] = {}
        new_hashes: list[dict[str, object]] = []
        for endpoint_id, token, secret_hash in rows:
            secret = _secret(settings, endpoint_id)
            if secret_hash is None:
                new_hashes.append({"id": endpoint_id, "secret_hash": hash_token(secret)})
            elif secret_hash != hash_token(secret):
                continue  # a device that registered itself: not ours to drive
            credentials[token] = device_credential(endpoint_id, secret)
        if new_hashes:  # one executemany by primary key
            await session.execute(update(Endpoint), new_hashes)
    return credentials


class DemoPhones:
    def __init__(self, settings: Settings, credentials: dict[str, str]) -> None:
        self.settings, self.credentials = settings, credentials
        self.rng = random.Random(7)
        self.seen_seq = 0

    async def run(self) -> None:
        log_url = f"{self.settings.fcm_api_url}/_sandbox/log"
        hub = f"http://127.0.0.1:{self.settings.port}"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            while True:
                await asyncio.sleep(POLL_S)
                try:
                    since = {"path": "/v1/", "after": str(self.seen_seq), "limit": "5000"}
                    async with http.get(log_url, params=since) as r:
                        entries = (await r.json())["entries"]
                    for push in self._new_pushes(entries):
                        await self._open(http, hub, push)
                except (aiohttp.ClientError, TimeoutError, KeyError, ValueError) as exc:
                    log.debug("demo phones: %r", exc)

    def _new_pushes(self, entries: list[dict[str, Any]]) -> list[tuple[str, dict[str, str]]]:
        out = []
        for entry in entries:  # only what came after the last one seen, oldest first
            if "status" not in entry:
                break  # still being answered: read it again next time
            self.seen_seq = entry["seq"]
            message = (entry.get("body") or {}).get("message") or {}
            token, data = message.get("token"), message.get("data") or {}
            if entry.get("status") == 200 and token in self.credentials and "open_ref" in data:
                if self.rng.random() < OPEN_SHARE:
                    out.append((token, data))
        return out

    async def _open(
        self, http: aiohttp.ClientSession, hub: str, push: tuple[str, dict[str, str]]
    ) -> None:
        token, data = push
        body = {"broadcast_id": int(data["broadcast_id"]), "ref": data["open_ref"]}
        headers = {"Authorization": f"Bearer {self.credentials[token]}"}
        async with http.post(f"{hub}/api/app/opens", json=body, headers=headers) as response:
            await response.read()


def attach(app: web.Application, settings: Settings) -> None:
    """Run the demo phones beside the server (web.Application cleanup context)."""

    async def phones(app: web.Application) -> AsyncIterator[None]:
        db = Database.from_settings(settings)
        try:
            credentials = await provision_devices(settings, db)
        finally:
            await db.close()
        task = asyncio.create_task(DemoPhones(settings, credentials).run())
        log.info(
            "demo phones: %s app devices open %.0f %% of pushes", len(credentials), 100 * OPEN_SHARE
        )
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(phones)
