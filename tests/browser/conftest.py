"""The hub on 127.0.0.1 (real PostgreSQL and Redis) driven by Debian's headless Chromium.

Playwright never downloads a browser here: it launches `/usr/bin/chromium`. Screenshots of
the main pages go to `artifacts/screenshots/` (git-ignored; CI keeps them).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from notify.db import Database
from notify.settings import REPO_ROOT, Settings
from notify.web.keys import DB
from tests.console.conftest import PASSWORD, add_staff

CHROMIUM = os.environ.get("HUB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = REPO_ROOT / "artifacts" / "screenshots"

# One database backend is enough for end-to-end runs: PostgreSQL, as in production.
pytestmark = [pytest.mark.browser, pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)]


@dataclass
class Hub:
    app: web.Application
    base_url: str

    @property
    def db(self) -> Database:
        return self.app[DB]


@pytest.fixture
def hub_settings(settings: Settings) -> Settings:
    """The hub's settings; a test module that sends overrides this with the sandboxes'."""
    return settings


@pytest.fixture
async def hub(hub_settings: Settings) -> AsyncIterator[Hub]:
    from server import create_app

    app = create_app(hub_settings)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    await add_staff(app)
    yield Hub(app, str(server.make_url("")).rstrip("/"))
    await server.close()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    if shutil.which(CHROMIUM) is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Chromium not found at {CHROMIUM} (scripts/setup-system.sh installs it)")
        pytest.skip(f"Chromium not found at {CHROMIUM}")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        instance = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield instance
        await instance.close()


@pytest.fixture
async def new_page(browser: Any, hub: Hub) -> AsyncIterator[Any]:
    """`await new_page()` → a page in a fresh context (its own cookies), Japanese locale."""
    contexts: list[Any] = []

    async def factory(locale: str = "ja-JP") -> Any:
        context = await browser.new_context(
            base_url=hub.base_url, locale=locale, viewport={"width": 1280, "height": 900}
        )
        # Generous: on a loaded 2-core machine a page can take seconds; CI runs alone.
        context.set_default_timeout(45_000)
        contexts.append(context)
        return await context.new_page()

    yield factory
    for context in contexts:
        await context.close()


async def sign_in(page: Any, login: str, password: str = PASSWORD) -> None:
    await page.goto("/console/login")
    await page.get_by_label("ログイン名").fill(login)
    await page.get_by_label("パスワード").fill(password)
    await page.get_by_role("button", name="ログイン").click()
    await page.wait_for_url("**/console")


# Basic WCAG checks a page must pass before its screenshot is taken: a language, one h1, a
# main landmark, a label for every control, text on every button, alt on every image, no
# duplicate ids, and every SVG chart named.
A11Y_PROBLEMS = """() => {
  const problems = [];
  const name = (el) => (el.getAttribute("aria-label") || el.textContent || el.value || "").trim();
  if (!document.documentElement.lang) problems.push("html has no lang");
  if (document.querySelectorAll("h1").length !== 1) problems.push("not exactly one h1");
  if (!document.querySelector("main")) problems.push("no main landmark");
  for (const c of document.querySelectorAll("input:not([type=hidden]), select, textarea")) {
    const labelled = (c.labels && c.labels.length) || c.getAttribute("aria-label")
      || c.getAttribute("aria-labelledby");
    if (!labelled) problems.push("unlabelled control " + (c.id || c.name));
  }
  for (const b of document.querySelectorAll("button, a[href]")) {
    if (!name(b)) problems.push("nameless " + b.tagName + " " + b.outerHTML.slice(0, 60));
  }
  for (const i of document.querySelectorAll("img:not([alt])")) problems.push("img without alt");
  for (const f of document.querySelectorAll("iframe:not([title])")) problems.push("untitled frame");
  for (const s of document.querySelectorAll("svg[role=img]")) {
    if (!s.getAttribute("aria-labelledby")) problems.push("unnamed chart");
  }
  const ids = [...document.querySelectorAll("[id]")].map((e) => e.id);
  const dups = new Set(ids.filter((x, i) => ids.indexOf(x) !== i));
  for (const id of dups) problems.push("duplicate id " + id);
  return problems;
}"""


async def screenshot(page: Any, name: str) -> Path:
    problems = await page.evaluate(A11Y_PROBLEMS)
    assert problems == [], f"{name}: {problems}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path
