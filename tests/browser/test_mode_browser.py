"""Disaster mode in Chromium: PR staff are refused; disaster staff sync the menus, switch
with a reason, and watch the switch finish against the LINE and FCM sandboxes."""

from __future__ import annotations

from typing import Any

import pytest

from notify.mode.tables import ModeState
from notify.settings import Settings
from sandbox.runner import SandboxHandles
from tests.browser.conftest import Hub, screenshot, sign_in
from tests.plugins.sandboxes import sandbox_settings
from tests.plugins.workers import run_burst_worker

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)]


@pytest.fixture
def hub_settings(settings: Settings, sandboxes: SandboxHandles) -> Settings:
    return sandbox_settings(settings, sandboxes, mail=False, mode_batch_poll_s=0.05)


async def mode_in_force(hub: Hub) -> str:
    async with hub.db.sessionmaker() as session:
        state = await session.get(ModeState, 1)
    return "normal" if state is None else state.mode


async def test_pr_staff_are_refused_the_mode_switch(new_page: Any, hub: Hub) -> None:
    page = await new_page()
    await sign_in(page, "pr")
    response = await page.goto("/console/mode")
    assert response is not None and response.status == 403
    assert "権限がありません" in await page.get_by_role("alert").inner_text()
    await screenshot(page, "91-mode-refused-for-pr")
    # Even a hand-made post with the PR user's own valid CSRF token is refused.
    status = await page.evaluate(
        """async () => {
            const body = new FormData();
            body.append("csrf_token", document.querySelector('meta[name="csrf-token"]').content);
            body.append("mode", "disaster");
            body.append("reason", "test");
            const r = await fetch("/console/mode/switch", {method: "POST", body});
            return r.status;
        }"""
    )
    assert status == 403
    assert await mode_in_force(hub) == "normal"


async def test_disaster_staff_switch_and_watch_it_finish(
    new_page: Any, hub: Hub, hub_settings: Settings, sandboxes: SandboxHandles
) -> None:
    page = await new_page()
    await sign_in(page, "disaster")
    await page.get_by_role("navigation").get_by_role("link", name="災害モード").click()
    await page.get_by_role("button", name="リッチメニューを同期する").click()
    await page.get_by_text("リッチメニューの同期を始めました。").wait_for()
    await run_burst_worker(hub_settings)  # the sync job creates the menus in the LINE sandbox
    await page.goto("/console/mode")
    assert await page.locator(".mode-state").inner_text() == "平常モード"
    await screenshot(page, "09-mode-normal")

    await page.get_by_role("link", name="災害モードに切り替える…").click()
    await page.get_by_role("button", name="災害モードに切り替える").click()
    await page.get_by_role("alert").wait_for()  # no reason: refused, nothing changed
    assert await mode_in_force(hub) == "normal"
    await page.get_by_label("理由（必須・記録に残ります）").fill("大雨特別警報（川崎市全域）")
    await screenshot(page, "10-mode-confirm")
    await page.get_by_role("button", name="災害モードに切り替える").click()
    await page.get_by_text("モードを切り替えました。").wait_for()
    assert await mode_in_force(hub) == "disaster"
    assert await page.locator(".mode-state").inner_text() == "災害モード"

    await run_burst_worker(hub_settings)  # default menu, app message, relinking
    # The page watches the switch and redraws itself when it finishes.
    status = page.locator("#switch-title + dl strong")
    await status.filter(has_text="完了").wait_for(timeout=30_000)
    assert "災害モード中です" in await page.locator(".mode-banner").inner_text()
    await screenshot(page, "11-mode-disaster")
    assert sandboxes.line.state.richmenus.default is not None
