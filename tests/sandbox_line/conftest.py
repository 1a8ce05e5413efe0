"""Fixtures: the LINE simulator as a real server on 127.0.0.1 and a client session for it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from sandbox.line import LineConfig, LineSandbox

from .helpers import Line


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
