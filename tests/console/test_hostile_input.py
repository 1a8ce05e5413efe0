"""Hostile input to console pages: answered with a page that says what is wrong, never a 500."""

from __future__ import annotations

from tests.console.conftest import Console, csrf_from


async def test_an_id_past_bigint_is_not_found_not_an_error(console: Console) -> None:
    # The database refuses such a number with an error; the page says "not found".
    csrf = await console.sign_in("admin")
    huge = "9" * 23
    for path in (f"/console/stats/{huge}", f"/console/broadcasts/{huge}"):
        await console.get_html(path, status=404)
    await console.post_form(
        f"/console/mode/proposals/{huge}/accept", {"csrf_token": csrf}, status=404
    )


async def test_a_nul_character_in_a_form_or_a_login_is_refused_not_an_error(
    console: Console,
) -> None:
    csrf = await console.sign_in("admin")
    _, _, page = await console.post_form(
        "/console/broadcasts/new", {"csrf_token": csrf, "title": "a\x00b"}, status=422
    )
    assert "NUL" in page
    await console.client.post("/console/logout", data={"csrf_token": csrf})
    login_page = await console.get_html("/console/login")
    resp = await console.client.post(
        "/console/login",
        data={"login": "admin\x00", "password": "x", "csrf_token": csrf_from(login_page)},
        allow_redirects=False,
    )
    assert resp.status in (401, 403, 200), resp.status  # a failed sign-in, not a 500
    assert "Sign-in failed" in await resp.text() or "失敗" in await resp.text()
