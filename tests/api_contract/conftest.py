from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from .contract import ContractClient


@pytest.fixture
async def contract(client: TestClient[Any, Any]) -> ContractClient:
    return await ContractClient.load(client)
