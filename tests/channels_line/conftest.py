"""Fixtures: the LINE simulator on 127.0.0.1 and a `LineChannel` pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from channels.line import LineChannel
from sandbox.line import SANDBOX_TOKEN, LineConfig, LineSandbox
from tests.sandbox_line.helpers import Line


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
