"""Fixtures: a bare FCM v1 client for the FCM sandbox (tests/plugins/sandboxes.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from google.auth.transport.requests import Request
from google.oauth2 import service_account

from sandbox.common import SandboxControl
from sandbox.fcm import FcmSandbox
from sandbox.runner import ServiceAccount
from tests.plugins.sandboxes import FCM_PROJECT as PROJECT

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"


async def fetch_access_token(path: Path) -> str:
    """Real google-auth code, run off the event loop as the adapter does."""
    credentials = service_account.Credentials.from_service_account_file(
        str(path), scopes=[FCM_SCOPE]
    )
    await asyncio.to_thread(credentials.refresh, Request())
    return str(credentials.token)


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
