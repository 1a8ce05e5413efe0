"""Fixtures for the provider simulators, shared by the sandbox and channel test folders.

Registered for the whole suite from tests/conftest.py (`pytest_plugins`); a folder's own
conftest can still override any of them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from sandbox.common import SandboxControl
from sandbox.fcm import FcmSandbox
from sandbox.line import LineConfig, LineSandbox
from sandbox.runner import ServiceAccount, register_service_account, write_service_account
from sandbox.smtp import SmtpSandbox

FCM_PROJECT = "city-test"


# --- LINE -------------------------------------------------------------------------------------


@pytest.fixture
def spec_dir(reference_dir: Path) -> Path:
    return reference_dir / "line-openapi"


@pytest.fixture
def config() -> LineConfig:
    return LineConfig()


@pytest.fixture
async def sandbox(spec_dir: Path, config: LineConfig) -> AsyncIterator[LineSandbox]:
    sandbox = LineSandbox(spec_dir=spec_dir, config=config)
    await sandbox.start()
    yield sandbox
    await sandbox.stop()


# --- FCM and SMTP -----------------------------------------------------------------------------


@pytest.fixture
async def fcm(reference_dir: Path) -> AsyncIterator[FcmSandbox]:
    sandbox = FcmSandbox(reference_dir / "fcm" / "fcm.v1.json", project_id=FCM_PROJECT)
    await sandbox.start()
    yield sandbox
    await sandbox.stop()


@pytest.fixture
def account(fcm: FcmSandbox, tmp_path: Path) -> ServiceAccount:
    account = write_service_account(tmp_path / "sa.json", fcm.token_uri, FCM_PROJECT)
    register_service_account(fcm, account)
    return account


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
