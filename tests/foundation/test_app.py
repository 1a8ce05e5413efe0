"""The app starts on both databases, answers health, and speaks the one JSON error shape."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from notify.errors import ConfigError
from notify.settings import Settings


async def test_health_reports_database_and_redis(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/healthz")
    assert resp.status == 200
    body = await resp.json()
    assert body == {"status": "ok", "database": "ok", "redis": "ok", "city": "川崎市"}


async def test_the_front_door_leads_to_the_console(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/", allow_redirects=False)
    assert (resp.status, resp.headers["Location"]) == (302, "/console/")


async def test_unknown_route_gets_json_404(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/no/such/page")
    assert resp.status == 404
    body = await resp.json()
    assert body["error"]["code"] == "not_found"


async def test_staff_endpoint_needs_a_token(
    client: TestClient[Any, Any], staff_headers: dict[str, dict[str, str]]
) -> None:
    resp = await client.get("/api/me")
    assert resp.status == 401
    assert (await resp.json())["error"]["code"] == "unauthenticated"
    resp = await client.get("/api/me", headers={"Authorization": "Bearer stf_forged"})
    assert resp.status == 401
    resp = await client.get("/api/me", headers=staff_headers["pr"])
    assert resp.status == 200
    assert await resp.json() == {"staff_id": 1, "login": "pr", "roles": ["pr"]}


async def test_openapi_document_is_valid(client: TestClient[Any, Any]) -> None:
    from openapi_spec_validator import validate

    resp = await client.get("/api/openapi.json")
    assert resp.status == 200
    doc = await resp.json()
    validate(doc)
    assert "/healthz" in doc["paths"]


@pytest.mark.parametrize("name", ["mail.city.example.jp x", "mail\r\nRSET", "é.example.jp"])
def test_an_ehlo_name_that_is_not_a_host_name_is_refused(name: str) -> None:
    with pytest.raises(ConfigError, match="smtp_helo_name"):
        Settings.from_env({"HUB_SMTP_HELO_NAME": name})


def test_settings_from_env_reads_only_known_names() -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": "postgresql://u@h/db",
            "HUB_PORT": "9000",
            "HOME": "/root",
            "HUB_NOPE": "x",
        }
    )
    assert settings.port == 9000
    assert settings.effective_database_url == "postgresql+asyncpg://u@h/db"
    assert not settings.is_sqlite
