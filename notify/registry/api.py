"""HTTP API of the registry area: how residents get in, and staff data requests.

The endpoints live with their logic (LINE webhook, LIFF form, app devices, email opt-in and
bounces, export / erase); importing the modules registers them on the area's one route table.
`setup(app)` opens the HTTP client the LIFF token check uses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from notify.registry import bounces, devices, email_optin, export_erase, liff, line_webhook
from notify.registry.liff import HTTP_CLIENT
from notify.registry.routing import routes
from notify.web.keys import AREAS

__all__ = [
    "bounces",
    "devices",
    "email_optin",
    "export_erase",
    "liff",
    "line_webhook",
    "routes",
    "setup",
]


async def _http_client(app: web.Application) -> AsyncIterator[None]:
    async with aiohttp.ClientSession() as http:
        app[AREAS].setdefault("registry", {})[HTTP_CLIENT] = http
        yield


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(_http_client)
