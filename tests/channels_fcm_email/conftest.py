"""Fixtures: the FCM and SMTP sandboxes (real servers on 127.0.0.1) and the adapters."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from channels.fcm import FcmChannel
from sandbox.common import SandboxControl
from sandbox.fcm import FcmSandbox
from sandbox.runner import ServiceAccount, register_service_account, write_service_account
from sandbox.smtp import SmtpSandbox

PROJECT = "city-test"


@pytest.fixture
async def fcm(reference_dir: Path) -> AsyncIterator[FcmSandbox]:
    sandbox = FcmSandbox(reference_dir / "fcm" / "fcm.v1.json", project_id=PROJECT)
    await sandbox.start()
    yield sandbox
    await sandbox.stop()


@pytest.fixture
def account(fcm: FcmSandbox, tmp_path: Path) -> ServiceAccount:
    account = write_service_account(tmp_path / "sa.json", fcm.token_uri, PROJECT)
    register_service_account(fcm, account)
    return account


@pytest.fixture
async def channel(fcm: FcmSandbox, account: ServiceAccount) -> AsyncIterator[FcmChannel]:
    adapter = FcmChannel(
        api_url=fcm.url, project_id=PROJECT, credentials_file=account.path, timeout_s=5
    )
    yield adapter
    await adapter.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def fcm_control(fcm: FcmSandbox, session: aiohttp.ClientSession) -> SandboxControl:
    return SandboxControl(fcm.url, session)


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpSandbox]:
    sandbox = SmtpSandbox()
    await sandbox.start()
    yield sandbox
    await sandbox.stop()


@pytest.fixture
def smtp_control(smtp: SmtpSandbox, session: aiohttp.ClientSession) -> SandboxControl:
    return SandboxControl(smtp.control_url, session)
