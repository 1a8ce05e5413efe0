"""Helpers for talking to the LINE simulator in tests (shared by the LINE channel tests)."""

from __future__ import annotations

import io
from typing import Any

import aiohttp
from PIL import Image

from sandbox.line import SANDBOX_TOKEN, LineSandbox

AUTH = {"Authorization": f"Bearer {SANDBOX_TOKEN}"}
TEXT = [{"type": "text", "text": "大雨警報が発表されました"}]


def user(index: int) -> str:
    return f"U{index:032x}"


def png(width: int = 2500, height: int = 843) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (0, 120, 60)).save(out, "PNG")
    return out.getvalue()


def menu_body(name: str = "normal", width: int = 2500, height: int = 843) -> dict[str, Any]:
    return {
        "size": {"width": width, "height": height},
        "selected": True,
        "name": name,
        "chatBarText": "メニュー",
        "areas": [
            {
                "bounds": {"x": 0, "y": 0, "width": width // 2, "height": height},
                "action": {"type": "postback", "data": "tab=news"},
            }
        ],
    }


class Line:
    """A tiny client for the simulator: returns (status, headers, json) of each call."""

    def __init__(self, sandbox: LineSandbox, session: aiohttp.ClientSession) -> None:
        self.sandbox = sandbox
        self.session = session
        self.url = sandbox.url

    async def call(
        self, method: str, path: str, *, auth: bool = True, **kwargs: Any
    ) -> tuple[int, Any, Any]:
        headers = dict(AUTH if auth else {}) | kwargs.pop("headers", {})
        async with self.session.request(
            method, self.url + path, headers=headers, **kwargs
        ) as response:
            try:
                body = await response.json(content_type=None)
            except ValueError:
                body = await response.read()
            return response.status, response.headers, body

    async def multicast(self, to: list[str], **extra: Any) -> tuple[int, Any, Any]:
        headers = extra.pop("headers", {})
        body = {"to": to, "messages": TEXT} | extra
        return await self.call("POST", "/v2/bot/message/multicast", json=body, headers=headers)

    async def delivered(self) -> dict[str, int]:
        """Messages delivered per user id, from the simulator's counters."""
        counters = await self.control("GET", "counters", params={"name": "delivered"})
        return dict(counters["counters"].get("delivered", {}).get("by_recipient", {}))

    async def control(self, method: str, route: str, **kwargs: Any) -> Any:
        async with self.session.request(method, self.url + "/_sandbox/" + route, **kwargs) as r:
            assert r.status == 200, await r.text()
            return await r.json()
