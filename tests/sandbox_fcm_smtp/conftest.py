"""Fixtures: the FCM and SMTP sandboxes as real servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from google.auth.transport.requests import Request
from google.oauth2 import service_account

from sandbox.common import SandboxControl
from sandbox.fcm import FcmSandbox
from sandbox.runner import ServiceAccount, register_service_account, write_service_account

PROJECT = "city-test"
FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"


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


async def fetch_access_token(path: Path) -> str:
    """Real google-auth code, run off the event loop as the adapter does."""
    credentials = service_account.Credentials.from_service_account_file(
        str(path), scopes=[FCM_SCOPE]
    )
    await asyncio.to_thread(credentials.refresh, Request())
    return str(credentials.token)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def fcm_client(
    fcm: FcmSandbox, account: ServiceAccount, session: aiohttp.ClientSession
) -> FcmClient:
    return FcmClient(fcm.url, await fetch_access_token(account.path), session)


class FcmClient:
    """A bare v1 client for the sandbox tests: one POST per message."""

    def __init__(self, url: str, token: str, session: aiohttp.ClientSession) -> None:
        self.url, self.token, self.session = url, token, session
        self.control = SandboxControl(url, session)

    async def send(
        self, message: dict, *, project: str = PROJECT, **extra: object
    ) -> tuple[int, dict]:
        async with self.session.post(
            f"{self.url}/v1/projects/{project}/messages:send",
            json={"message": message, **extra},
            headers={"Authorization": f"Bearer {self.token}"},
        ) as response:
            return response.status, await response.json()
