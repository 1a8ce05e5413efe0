"""The console works offline: every script, style and font is served by the hub."""

from __future__ import annotations

import re
from typing import Any

from notify.settings import REPO_ROOT
from tests.console.conftest import Console

EXTERNAL = re.compile(
    r"""(?:src|href|action)\s*=\s*["'](?:https?:)?//|url\(\s*["']?(?:https?:)?//"""
)


def test_no_template_or_asset_loads_anything_from_elsewhere() -> None:
    files = [
        *(REPO_ROOT / "templates" / "console").glob("*.html"),
        *(REPO_ROOT / "static").glob("*"),
    ]
    assert files
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert not EXTERNAL.search(text), path
        assert "@font-face" not in text and "@import" not in text, path


async def test_static_files_are_served(console: Console) -> None:
    for name, kind in (("console.css", "text/css"), ("console.js", "javascript")):
        resp: Any = await console.client.get(f"/static/{name}")
        assert resp.status == 200
        assert kind in resp.headers["Content-Type"]


async def test_every_page_carries_the_security_headers(console: Console) -> None:
    await console.sign_in("admin")
    for path in ("/console", "/console/broadcasts", "/console/stats", "/console/mode"):
        resp = await console.client.get(path)
        assert resp.status == 200, path
        csp = resp.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
