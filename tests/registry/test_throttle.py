"""Public writes a bot could abuse are limited per client address and minute (in Redis)."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient, make_mocked_request

from notify.errors import ConfigError
from notify.settings import Settings
from notify.web.throttle import client_key
from tests.conftest import count_rows

from .conftest import hub_db

LIMIT = 3


@pytest.fixture
async def limited(make_client: Any, hub_settings: Settings) -> TestClient[Any, Any]:
    settings = hub_settings.model_copy(update={"public_writes_per_min": LIMIT})
    client: TestClient[Any, Any] = await make_client(settings)
    return client


async def test_subscriptions_past_the_limit_get_429_and_store_nothing(
    limited: TestClient[Any, Any],
) -> None:
    for n in range(LIMIT):
        resp = await limited.post("/api/email/subscribe", json={"email": f"r{n}@example.jp"})
        assert resp.status == 202, await resp.text()
    resp = await limited.post("/api/email/subscribe", json={"email": "bot@example.jp"})
    assert resp.status == 429
    assert 1 <= int(resp.headers["Retry-After"]) <= 60
    assert (await resp.json())["error"]["code"] == "too_many_requests"
    assert await count_rows(hub_db(limited), "endpoints") == LIMIT
    # Device registration is counted apart.
    device = {"fcm_token": "fcm-token-" + "b" * 40, "platform": "android"}
    assert (await limited.post("/api/app/devices", json=device)).status == 201


async def test_a_forged_forwarded_for_does_not_escape_the_limit(
    limited: TestClient[Any, Any],
) -> None:
    statuses = []
    for n in range(LIMIT + 1):
        headers = {"X-Forwarded-For": f"198.51.100.{n}"}  # 127.0.0.1 is not a trusted proxy
        device = {"fcm_token": f"fcm-token-{n}-" + "c" * 40, "platform": "ios"}
        statuses.append(
            (await limited.post("/api/app/devices", json=device, headers=headers)).status
        )
    assert statuses == [201] * LIMIT + [429]


def _key(remote: str, forwarded: str, trusted: str) -> str:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    request = make_mocked_request("POST", "/", headers=headers, transport=_Transport(remote))
    return client_key(request, trusted)


class _Transport:
    def __init__(self, remote: str) -> None:
        self.remote = remote

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return (self.remote, 40000) if name == "peername" else default

    def is_closing(self) -> bool:
        return False


@pytest.mark.parametrize(
    ("remote", "forwarded", "trusted", "expected"),
    [
        ("203.0.113.7", "", "", "203.0.113.7"),
        ("203.0.113.7", "198.51.100.1", "", "203.0.113.7"),  # not a proxy: header ignored
        ("10.0.0.2", "198.51.100.1", "10.0.0.0/8", "198.51.100.1"),
        # Only the hops appended by trusted proxies count; the client's own claim is not one.
        ("10.0.0.2", "1.2.3.4, 198.51.100.1, 10.0.0.9", "10.0.0.0/8", "198.51.100.1"),
        ("10.0.0.2", "garbage", "10.0.0.0/8", "unknown"),
        ("2001:db8:1:2:3:4:5:6", "", "", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "", "", "2001:db8:1:2::/64"),  # same household
    ],
)
def test_the_client_address_behind_trusted_proxies(
    remote: str, forwarded: str, trusted: str, expected: str
) -> None:
    assert _key(remote, forwarded, trusted) == expected


def test_trusted_proxies_must_be_addresses_or_networks() -> None:
    with pytest.raises(ConfigError, match="trusted_proxies"):
        Settings.from_env({"HUB_TRUSTED_PROXIES": "10.0.0.0/8, proxy.example.jp"})
