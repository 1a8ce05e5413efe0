"""An API client that speaks as a named staff member, and a standard draft."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from notify.db import Database
from notify.web.keys import DB


@dataclass
class Reply:
    status: int
    body: Any

    @property
    def fields(self) -> dict[str, str]:
        return dict(self.body["error"]["fields"])


@dataclass
class Api:
    client: TestClient[Any, Any]
    headers: dict[str, dict[str, str]]

    async def call(self, who: str, method: str, path: str, body: Any = None) -> Reply:
        kw: dict[str, Any] = {"headers": self.headers[who]}
        if body is not None:
            kw["json"] = body
        resp = await self.client.request(method, path, **kw)
        data = await resp.json() if resp.content_type == "application/json" else await resp.text()
        return Reply(resp.status, data)

    async def ok(
        self, who: str, method: str, path: str, body: Any = None, status: int = 200
    ) -> Any:
        reply = await self.call(who, method, path, body)
        assert reply.status == status, reply.body
        return reply.body

    async def draft(self, who: str = "pr", **overrides: Any) -> dict[str, Any]:
        return await self.ok(who, "POST", "/api/broadcasts", draft_body(**overrides), status=201)  # type: ignore[no-any-return]

    async def approved(self, **overrides: Any) -> dict[str, Any]:
        b = await self.draft(**overrides)
        author = "disaster" if overrides.get("priority") == "emergency" else "pr"
        b = await self.ok(
            author, "POST", f"/api/broadcasts/{b['id']}/submit", {"version": b["version"]}
        )
        return await self.ok(  # type: ignore[no-any-return]
            "approver", "POST", f"/api/broadcasts/{b['id']}/approve", {"version": b["version"]}
        )

    @property
    def db(self) -> Database:
        return self.client.server.app[DB]


def draft_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "3歳児健診のお知らせ",
        "topic": "childcare",
        "content": {
            "ja": {
                "title": "3歳児健診のお知らせ",
                "body": "{{ resident.ward or '市内' }}の3歳児健診の日程です。",
                "url": "https://www.city.kawasaki.jp/",
            },
            "en": {
                "title": "Check-ups for 3-year-olds",
                "body": "Dates for {{ resident.ward or 'the city' }}.",
            },
        },
        "segment": {
            "type": "all",
            "rules": [
                {"type": "child_age", "min": {"years": 3}, "max": {"years": 3, "months": 11}},
                {"type": "wards", "codes": ["141313", "141321"]},
            ],
        },
        "channels": ["line", "fcm", "email"],
        "channel_policy": "preferred",
    }
    body.update(overrides)
    return body


@pytest.fixture
async def api(client: TestClient[Any, Any], staff_headers: dict[str, dict[str, str]]) -> Api:
    return Api(client, staff_headers)
