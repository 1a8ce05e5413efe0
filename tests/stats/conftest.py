"""Fixtures for statistics tests: a LINE sandbox, the hub pointed at it, and data builders.

Deliveries are inserted through the delivery engine's own model (`notify.delivery.tables`),
as the engine would leave them after a send.
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from notify.db import Database, utcnow
from notify.delivery.tables import Delivery, DeliveryBatch
from notify.models import Broadcast, Consent, Endpoint, Resident
from notify.settings import Settings
from notify.web.auth import device_credential, hash_token, new_device_secret
from notify.web.keys import DB
from sandbox.line.server import SANDBOX_TOKEN, LineSandbox
from sandbox.line.state import LineConfig


@pytest.fixture
async def line_sandbox(reference_dir: Path) -> AsyncIterator[LineSandbox]:
    sandbox = LineSandbox(
        spec_dir=reference_dir / "line-openapi", config=LineConfig(open_probability=1.0)
    )
    await sandbox.start()
    yield sandbox
    await sandbox.stop()


@pytest.fixture
def stats_settings(settings: Settings, line_sandbox: LineSandbox) -> Settings:
    return settings.model_copy(
        update={
            "line_api_url": line_sandbox.url,
            "line_data_url": line_sandbox.url,
            "line_channel_access_token": SANDBOX_TOKEN,
        }
    )


@pytest.fixture
async def hub(make_client: Any, stats_settings: Settings) -> TestClient[Any, Any]:
    client: TestClient[Any, Any] = await make_client(stats_settings)
    return client


@pytest.fixture
def hub_db(hub: TestClient[Any, Any]) -> Database:
    return hub.server.app[DB]


@dataclass(frozen=True, slots=True)
class Target:
    resident_id: int
    endpoint_id: int
    channel: str
    ward_code: str
    language: str
    address: str
    credential: str | None = None  # app devices: "dev_<id>_<secret>"


async def make_broadcast(
    db: Database,
    title: str = "お知らせ",
    *,
    content: dict[str, Any] | None = None,
    channels: tuple[str, ...] = ("line", "fcm", "email"),
    started_at: dt.datetime | None = None,
) -> int:
    async with db.transaction() as session:
        broadcast = Broadcast(
            title=title,
            status="sent",
            content=content or {"ja": {"email": {"text": "https://city.example.jp/info"}}},
            segment={},
            channels=list(channels),
            started_at=started_at or utcnow(),
        )
        session.add(broadcast)
        await session.flush()
        return broadcast.id


async def make_targets(
    db: Database, channel: str, n: int, *, ward_code: str = "141313", language: str = "ja"
) -> list[Target]:
    out: list[Target] = []
    async with db.transaction() as session:
        for _ in range(n):
            resident = Resident(public_id=str(uuid.uuid4()), ward_code=ward_code, language=language)
            session.add(resident)
            await session.flush()
            if channel == "line":
                address = "U" + secrets.token_hex(16)
            elif channel == "fcm":
                address = "fcm-" + secrets.token_urlsafe(24)
            else:
                address = f"r{resident.id}-{secrets.token_hex(3)}@example.jp"
            secret = new_device_secret() if channel == "fcm" else None
            endpoint = Endpoint(
                resident_id=resident.id,
                channel=channel,
                address=address,
                consent=Consent.GRANTED,
                consent_at=utcnow(),
                secret_hash=hash_token(secret) if secret else None,
                token=secrets.token_urlsafe(16)[:22],
            )
            session.add(endpoint)
            await session.flush()
            credential = device_credential(endpoint.id, secret) if secret else None
            out.append(
                Target(resident.id, endpoint.id, channel, ward_code, language, address, credential)
            )
    return out


async def add_deliveries(
    db: Database,
    broadcast_id: int,
    targets: list[Target],
    status: str = "sent",
    *,
    sent_at: dt.datetime | None = None,
    error_code: str | None = None,
) -> None:
    moment = sent_at or utcnow()
    async with db.transaction() as session:
        for target in targets:
            session.add(
                Delivery(
                    broadcast_id=broadcast_id,
                    resident_id=target.resident_id,
                    endpoint_id=target.endpoint_id,
                    channel=target.channel,
                    ward_code=target.ward_code,
                    language=target.language,
                    status=status,
                    provider_id="p-1" if status == "sent" else None,
                    error_code=error_code,
                    sent_at=moment if status == "sent" else None,
                )
            )


async def line_batch(
    db: Database,
    sandbox: LineSandbox,
    broadcast_id: int,
    targets: list[Target],
    unit: str,
    *,
    ward_code: str | None = None,
) -> None:
    """What the delivery engine does for one LINE batch: the batch row and the multicast."""
    async with db.transaction() as session:
        session.add(
            DeliveryBatch(
                broadcast_id=broadcast_id,
                channel="line",
                seq=1,
                language="ja",
                ward_code=ward_code,
                size=len(targets),
                status="done",
                aggregation_unit=unit,
            )
        )
    body = {
        "to": [t.address for t in targets],
        "messages": [{"type": "text", "text": "お知らせ"}],
        "customAggregationUnits": [unit],
    }
    async with aiohttp.ClientSession() as http:
        response = await http.post(
            f"{sandbox.url}/v2/bot/message/multicast",
            json=body,
            headers={"Authorization": f"Bearer {SANDBOX_TOKEN}"},
        )
        assert response.status == 200, await response.text()


def line_requests(sandbox: LineSandbox, path: str) -> list[dict[str, Any]]:
    return sandbox.base.log.entries(path=path)
