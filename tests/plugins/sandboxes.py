"""Fixtures for the provider simulators, shared by the sandbox and channel test folders.

Registered for the whole suite from tests/conftest.py (`pytest_plugins`); a folder's own
conftest can still override any of them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from notify.settings import Settings
from sandbox.common import SandboxControl
from sandbox.fcm import FcmSandbox
from sandbox.line import SANDBOX_TOKEN, LineConfig, LineSandbox
from sandbox.runner import (
    SandboxHandles,
    ServiceAccount,
    register_service_account,
    start_sandboxes,
    write_service_account,
)
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


# --- every provider at once, for tests that run the hub end to end ---------------------------


@pytest.fixture
async def sandboxes(tmp_path: Path, reference_dir: Path) -> AsyncIterator[SandboxHandles]:
    """LINE, FCM and SMTP as `sandbox.runner` starts them for the demo, rate limits off."""
    handles = await start_sandboxes(
        tmp_path / "sandbox", reference_dir=reference_dir, limits_enabled=False
    )
    yield handles
    await handles.stop()


def sandbox_settings(
    settings: Settings, handles: SandboxHandles, *, mail: bool = True, **update: Any
) -> Settings:
    """`settings` with the LINE and FCM clients (and, with `mail`, SMTP) pointed at `handles`,
    then `update` on top."""
    providers: dict[str, Any] = {
        "line_api_url": handles.line.url,
        "line_data_url": handles.line.url,
        "line_channel_access_token": SANDBOX_TOKEN,
        "fcm_api_url": handles.fcm.url,
        "fcm_project_id": handles.service_account.project_id,
        "fcm_credentials_file": handles.service_account.path,
    }
    if mail:
        assert handles.smtp is not None
        providers |= {
            "smtp_host": handles.smtp.host,
            "smtp_port": handles.smtp.port,
            "mail_from": "info@city.example.jp",
        }
    return settings.model_copy(update={**providers, **update})
