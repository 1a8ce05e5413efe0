"""Fixtures for disaster mode: the LINE and FCM sandboxes (real servers on 127.0.0.1, LINE's
real rate limits), the hub app pointed at them, a burst worker, LINE residents."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from notify.city import load_city
from notify.db import Database
from notify.mode.runtime import ModeRuntime
from notify.mode.sync import sync_menus
from notify.models import AuditEntry, Consent, Endpoint, Resident
from notify.settings import Settings
from notify.web.keys import DB
from sandbox.common import SandboxControl
from sandbox.fcm import FcmSandbox
from sandbox.line.server import SANDBOX_TOKEN, LineSandbox
from sandbox.runner import register_service_account, write_service_account
from tests.plugins.workers import run_burst_worker

FONT = Path("/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf")
PROJECT = "city-mode-test"
RELAY_SECRET = "relay-secret-for-tests"


@pytest.fixture
async def line_sandbox(reference_dir: Path) -> AsyncIterator[LineSandbox]:
    sandbox = LineSandbox(spec_dir=reference_dir / "line-openapi", log_size=5000)
    await sandbox.start()
    yield sandbox
    await sandbox.stop()


@pytest.fixture
async def fcm_sandbox(reference_dir: Path) -> AsyncIterator[FcmSandbox]:
    sandbox = FcmSandbox(reference_dir / "fcm" / "fcm.v1.json", project_id=PROJECT)
    await sandbox.start()
    yield sandbox
    await sandbox.stop()


@pytest.fixture
def mode_settings(
    settings: Settings, line_sandbox: LineSandbox, fcm_sandbox: FcmSandbox, tmp_path: Path
) -> Settings:
    account = write_service_account(tmp_path / "sa.json", fcm_sandbox.token_uri, PROJECT)
    register_service_account(fcm_sandbox, account)
    return settings.model_copy(
        update={
            "line_api_url": line_sandbox.url,
            "line_data_url": line_sandbox.url,
            "line_channel_access_token": SANDBOX_TOKEN,
            "fcm_api_url": fcm_sandbox.url,
            "fcm_project_id": PROJECT,
            "fcm_credentials_file": account.path,
            "rich_menu_font": FONT if FONT.is_file() else None,
            "mode_batch_poll_s": 0.05,
            "jma_relay_secret": RELAY_SECRET,
            "smtp_port": 1,  # no mail in these tests
        }
    )


@pytest.fixture
async def hub(make_client: Any, mode_settings: Settings) -> TestClient[Any, Any]:
    client: TestClient[Any, Any] = await make_client(mode_settings)
    return client


@pytest.fixture
def hub_db(hub: TestClient[Any, Any]) -> Database:
    return hub.server.app[DB]


@pytest.fixture
async def rt(mode_settings: Settings, hub_db: Database) -> AsyncIterator[ModeRuntime]:
    """A runtime like the worker's (with LINE and FCM clients) on the hub's database."""
    runtime = ModeRuntime.build(mode_settings, load_city(mode_settings.city_config), hub_db)
    yield runtime
    await runtime.close()


@pytest.fixture
async def synced(rt: ModeRuntime) -> dict[str, str]:
    """The city's menus synced to the LINE sandbox: key → rich menu id."""
    return (await sync_menus(rt)).menus


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def line_control(line_sandbox: LineSandbox, http: aiohttp.ClientSession) -> SandboxControl:
    return SandboxControl(line_sandbox.url, http)


async def run_worker(settings: Settings) -> None:
    """Drain the queue with a burst worker (every area's jobs)."""
    await run_burst_worker(settings, poll_delay=0.02)


async def add_line_residents(
    db: Database, count: int, wards: Iterable[str] = ("141313",)
) -> list[str]:
    """Residents with an active LINE endpoint each; returns their LINE user ids."""
    ward_list = list(wards)
    users = [f"U{secrets.token_hex(16)}" for _ in range(count)]
    async with db.transaction() as session:
        for index, user in enumerate(users):
            resident = Resident(
                public_id=str(uuid.uuid4()), ward_code=ward_list[index % len(ward_list)]
            )
            session.add(resident)
            await session.flush()
            session.add(
                Endpoint(
                    resident_id=resident.id, channel="line", address=user, consent=Consent.GRANTED
                )
            )
    return users


async def links(line_sandbox: LineSandbox, users: Iterable[str]) -> dict[str, str | None]:
    store = line_sandbox.state.richmenus
    return {user: store.menu_of(user) for user in users}


async def shown(line_sandbox: LineSandbox, users: Iterable[str]) -> dict[str, str | None]:
    store = line_sandbox.state.richmenus
    return {user: store.shown_to(user) for user in users}


async def audit_actions(db: Database, prefix: str = "") -> list[str]:
    async with db.sessionmaker() as session:
        rows = await session.execute(
            select(AuditEntry.action)
            .where(AuditEntry.action.startswith(prefix))
            .order_by(AuditEntry.id)
        )
        return [str(a) for a in rows.scalars()]


async def count(db: Database, model: Any) -> int:
    async with db.sessionmaker() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())
