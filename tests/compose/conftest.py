from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from notify.city import CityConfig, load_city
from notify.compose.context import message_context
from notify.settings import REPO_ROOT


@pytest.fixture(scope="session")
def city() -> CityConfig:
    return load_city(Path(REPO_ROOT / "config" / "kawasaki.yaml"))


@pytest.fixture
def ctx(city: CityConfig) -> dict[str, Any]:
    return message_context(city, ward_code="141313", broadcast_id=7, title="t")


@pytest.fixture
async def line_sandbox(reference_dir: Path) -> AsyncIterator[Any]:
    from sandbox.line import LineSandbox

    sandbox = LineSandbox(spec_dir=reference_dir / "line-openapi")
    await sandbox.start()
    yield sandbox
    await sandbox.stop()
