"""Fixtures: a `LineChannel` pointed at the LINE simulator (tests/plugins/sandboxes.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from channels.line import LineChannel
from sandbox.line import SANDBOX_TOKEN, LineSandbox
from tests.sandbox_line.helpers import Line


@pytest.fixture
async def line(sandbox: LineSandbox) -> AsyncIterator[Line]:
    async with aiohttp.ClientSession() as session:
        yield Line(sandbox, session)


@pytest.fixture
async def channel(sandbox: LineSandbox) -> AsyncIterator[LineChannel]:
    channel = LineChannel(
        api_url=sandbox.url, data_url=sandbox.url, channel_access_token=SANDBOX_TOKEN, timeout_s=2
    )
    yield channel
    await channel.close()
