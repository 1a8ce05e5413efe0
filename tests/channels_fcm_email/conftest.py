"""Fixtures: the FCM and SMTP sandboxes (real servers on 127.0.0.1) and the adapters."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from channels.fcm import FcmChannel
from sandbox.fcm import FcmSandbox
from sandbox.runner import ServiceAccount
from tests.plugins.sandboxes import FCM_PROJECT as PROJECT


@pytest.fixture
async def channel(fcm: FcmSandbox, account: ServiceAccount) -> AsyncIterator[FcmChannel]:
    adapter = FcmChannel(
        api_url=fcm.url, project_id=PROJECT, credentials_file=account.path, timeout_s=5
    )
    yield adapter
    await adapter.close()
