"""Hostile input to console pages: answered with a page that says what is wrong, never a 500."""

from __future__ import annotations

import pytest

from tests.console.conftest import PASSWORD, Console, csrf_from


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


async def test_every_compose_field_given_hostile_values_gets_no_server_error(
    console: Console,
) -> None:
    """The compose form, each field in turn given values a browser would never send."""
    from tests.console.test_compose_page import compose_data

    token = await console.sign_in("pr")
    fields = [
        "title", "topic", "priority", "channels", "channel_policy", "send_at", "ja_title",
        "ja_body", "ja_url", "en_title", "en_body", "line_text", "push_title", "push_body",
        "email_subject", "wards", "languages", "interests", "age_min_years", "age_min_months",
        "age_max_years", "age_max_months", "segment_advanced", "action", "version",
    ]  # fmt: skip
    hostile = [
        "", "-1", "9" * 30, "２", "x" * 100_000, "{{", "null", '{"type": "not"}',
        "2026-02-30T25:61", "\u202e",
    ]  # fmt: skip
    failures, statuses = [], set()
    for field, value in [(f, v) for f in fields for v in hostile]:
        for action in ("preview", "save"):
            data = compose_data(token, **{field: value, "action": action})
            resp = await console.client.post(
                "/console/broadcasts/new", data=data, allow_redirects=False
            )
            statuses.add(resp.status)
            if resp.status >= 500:
                failures.append(f"{field}={value[:30]!r} ({action}) → {resp.status}")
    assert not failures, "\n".join(failures[:30])
    assert {200, 303} <= statuses  # previews shown and drafts saved: the values got that far


async def test_every_console_form_given_hostile_values_gets_no_server_error(
    console: Console,
) -> None:
    """Every form the console posts to, signed in as admin with a valid CSRF token, each
    field it reads given hostile values; broadcast forms aimed at a real draft."""
    from tests.console.test_compose_page import compose_data

    token = await console.sign_in("admin")
    await console.post_form("/console/broadcasts/new", compose_data(token, action="save"))
    draft = "/console/broadcasts/1"
    paths = [
        *(f"{draft}/{a}" for a in ("submit", "approve", "reject", "withdraw", "schedule")),
        *(f"{draft}/{a}" for a in ("cancel", "delivery/pause", "delivery/resume")),
        f"{draft}/delivery/cancel",
        f"{draft}/edit",
        "/console/mode/switch",
        "/console/mode/emergency",
        "/console/mode/sync",
        "/console/mode/proposals/1/accept",
        "/console/reach",
    ]
    fields = [
        "comment", "emergency_template", "mode", "note", "reason", "return_to", "send_at",
        "send_message", "template", "version", "when", "channels", "wards",
    ]  # fmt: skip
    hostile = ["", "-1", "9" * 30, "２", "x" * 50_000, "{{ x", "2026-02-30T25:61", "//evil.example"]
    failures = []
    # Every field at once (the version apart, so the form is not just refused as stale),
    # then the version alone.
    forms = [{**dict.fromkeys(fields, v), "version": "1"} for v in hostile]
    forms += [{"version": v} for v in hostile]
    for path, form in [(p, f) for p in paths for f in forms]:
        data = {"csrf_token": token, **form}
        resp = await console.client.post(path, data=data, allow_redirects=False)
        shown = {k: v[:20] for k, v in form.items() if k in ("version", "when")}
        if resp.status >= 500:
            failures.append(f"{path} {shown} → {resp.status}")
        location = resp.headers.get("Location", "")
        if "evil.example" in location:
            failures.append(f"{path} {shown} redirects off site: {location}")
    assert not failures, "\n".join(failures[:30])


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/console",
        "/console\r\nSet-Cookie: x=1",
        "/console\x00",
        "https://evil.example",
    ],
)
async def test_the_sign_in_return_path_stays_on_the_console(console: Console, target: str) -> None:
    login_page = await console.get_html("/console/login")
    resp = await console.client.post(
        "/console/login",
        data={
            "login": "pr",
            "password": PASSWORD,
            "csrf_token": csrf_from(login_page),
            "next": target,
        },
        allow_redirects=False,
    )
    assert resp.status == 303, resp.status
    assert resp.headers["Location"] == "/console"
    resp = await console.client.get(
        "/console/login", params={"next": target}, allow_redirects=False
    )  # signed in already: straight on
    assert resp.status == 303 and resp.headers["Location"] == "/console"
    resp = await console.client.get(
        "/console/lang/en", params={"next": target}, allow_redirects=False
    )
    assert resp.status == 303 and resp.headers["Location"] == "/console"
