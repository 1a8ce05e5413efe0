"""Fixtures: the LINE simulator (tests/plugins/sandboxes.py) and a client session for it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from sandbox.line import LineSandbox

from .helpers import Line


@pytest.fixture
async def line(sandbox: LineSandbox) -> AsyncIterator[Line]:
    async with aiohttp.ClientSession() as session:
        yield Line(sandbox, session)
