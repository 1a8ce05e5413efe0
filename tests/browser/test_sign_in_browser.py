"""Signing in, the language switch and CSRF refusal, in headless Chromium."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import Hub, screenshot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)]


async def test_sign_in_in_japanese_then_english(new_page: Any, hub: Hub) -> None:
    page = await new_page()
    await page.goto("/console")
    await page.wait_for_url("**/console/login?next=/console")
    assert await page.get_attribute("html", "lang") == "ja"
    await screenshot(page, "01-login")
    await sign_in(page, "pr")
    assert await page.get_by_role("heading", level=1).inner_text() == "ようこそ、pr 職員さん"
    nav = page.get_by_role("navigation", name="メインメニュー")
    assert await nav.get_by_role("link", name="新規作成").is_visible()
    assert await nav.get_by_role("link", name="災害モード").count() == 0
    await screenshot(page, "02-home-pr")
    await page.get_by_role("link", name="English").click()
    await page.wait_for_url("**/console")
    assert await page.get_attribute("html", "lang") == "en"
    assert await page.get_by_role("heading", level=1).inner_text() == "Welcome, pr 職員"
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url("**/console/login")


async def test_keyboard_reaches_the_form_and_focus_is_visible(new_page: Any, hub: Hub) -> None:
    page = await new_page()
    await page.goto("/console/login")
    # autofocus is applied after load, asynchronously
    await page.wait_for_function("document.activeElement && document.activeElement.id === 'login'")
    outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"
    await page.keyboard.type("approver")
    await page.keyboard.press("Tab")
    await page.keyboard.type("correct-horse-battery")
    await page.keyboard.press("Enter")
    await page.wait_for_url("**/console")
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.className") == "skip-link"
    assert await page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"
    await page.keyboard.press("Enter")
    await page.wait_for_function("document.activeElement && document.activeElement.id === 'main'")


async def test_form_without_its_csrf_token_is_refused(new_page: Any, hub: Hub) -> None:
    page = await new_page()
    await sign_in(page, "pr")
    await page.evaluate("document.querySelector('form.logout input[name=csrf_token]').remove()")
    async with page.expect_response("**/console/logout") as info:
        await page.get_by_role("button", name="ログアウト").click()
    response = await info.value
    assert response.status == 403
    assert await page.get_by_role("alert").is_visible()
    assert "不正な送信" in await page.get_by_role("alert").inner_text()
    await screenshot(page, "90-csrf-refused")
    await page.goto("/console")
    assert page.url.endswith("/console"), "the refused sign-out must not have signed out"
