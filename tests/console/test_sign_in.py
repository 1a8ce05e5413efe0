"""Sign-in, sessions, lockout and CSRF, through the real hub and real Redis."""

from __future__ import annotations

import re

import redis.asyncio as aioredis
from sqlalchemy import select

from notify.console.sessions import SESSION_COOKIE
from notify.models import AuditEntry, StaffUser
from notify.settings import Settings
from notify.staff import MAX_FAILED_LOGINS
from tests.console.conftest import PASSWORD, Console, csrf_from, start_console


async def test_login_page_is_japanese_first_with_a_csrf_field(console: Console) -> None:
    html = await console.get_html("/console/login")
    assert '<html lang="ja">' in html
    assert "職員ログイン" in html
    assert '<label for="login">ログイン名</label>' in html
    assert csrf_from(html)
    resp = await console.client.get("/console/login")
    assert "Content-Security-Policy" in resp.headers
    assert "default-src 'self'" in resp.headers["Content-Security-Policy"]


async def test_language_switch_turns_the_page_english(console: Console) -> None:
    resp = await console.client.get("/console/lang/en?next=/console/login", allow_redirects=False)
    assert resp.status == 303
    assert resp.headers["Location"] == "/console/login"
    html = await console.get_html("/console/login")
    assert '<html lang="en">' in html
    assert "Staff sign-in" in html


async def test_language_switch_never_redirects_off_site(console: Console) -> None:
    for target in ("//evil.example/", "https://evil.example/", "/console/..\\evil"):
        resp = await console.client.get(f"/console/lang/en?next={target}", allow_redirects=False)
        assert resp.headers["Location"] == "/console"


async def test_sign_in_sets_a_hardened_session_cookie(console: Console) -> None:
    token = csrf_from(await console.get_html("/console/login"))
    resp = await console.client.post(
        "/console/login",
        data={"login": "pr", "password": PASSWORD, "csrf_token": token, "next": "/console"},
        allow_redirects=False,
    )
    assert resp.status == 303
    assert resp.headers["Location"] == "/console"
    cookie = next(c for c in resp.headers.getall("Set-Cookie") if c.startswith(SESSION_COOKIE))
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" in cookie
    html = await console.get_html("/console")
    assert "pr 職員" in html
    assert "広報" in html
    async with console.db.sessionmaker() as session:
        actions = (await session.scalars(select(AuditEntry.action))).all()
    assert "console.login" in actions


async def test_demo_mode_cookie_is_not_secure(settings: Settings) -> None:
    client, _ = await start_console(settings.model_copy(update={"demo": True}))
    try:
        html = await (await client.get("/console/login")).text()
        resp = await client.post(
            "/console/login",
            data={"login": "pr", "password": PASSWORD, "csrf_token": csrf_from(html)},
            allow_redirects=False,
        )
        cookie = next(c for c in resp.headers.getall("Set-Cookie") if SESSION_COOKIE in c)
        assert "HttpOnly" in cookie and "Secure" not in cookie
    finally:
        await client.close()


async def test_session_lives_in_redis_under_a_hash(console: Console, redis_url: str) -> None:
    await console.sign_in("pr")
    session_id = console.client.session.cookie_jar.filter_cookies(console.client.make_url("/"))[
        SESSION_COOKIE
    ].value
    redis = aioredis.from_url(redis_url)
    try:
        keys = [k.decode() for k in await redis.keys("console:session:*")]
        ttl = await redis.ttl(keys[0])
    finally:
        await redis.aclose()
    assert len(keys) == 1 and session_id not in keys[0]
    assert 0 < ttl <= 3600


async def test_wrong_password_is_refused_without_saying_which_part(console: Console) -> None:
    token = csrf_from(await console.get_html("/console/login"))
    for login in ("pr", "nobody"):
        resp = await console.client.post(
            "/console/login",
            data={"login": login, "password": "wrong-password-123", "csrf_token": token},
            allow_redirects=False,
        )
        assert resp.status == 401
        assert "ログインできませんでした" in await resp.text()
    resp = await console.client.get("/console", allow_redirects=False)
    assert resp.status == 303
    assert resp.headers["Location"].startswith("/console/login?next=")


async def test_repeated_failures_lock_the_account(console: Console) -> None:
    token = csrf_from(await console.get_html("/console/login"))
    for _ in range(MAX_FAILED_LOGINS):
        resp = await console.client.post(
            "/console/login",
            data={"login": "approver", "password": "wrong-password-123", "csrf_token": token},
        )
        assert resp.status == 401
    resp = await console.client.post(
        "/console/login",
        data={"login": "approver", "password": PASSWORD, "csrf_token": token},
        allow_redirects=False,
    )
    assert resp.status == 401, "the right password must not open a locked account"
    async with console.db.sessionmaker() as session:
        user = (
            await session.execute(select(StaffUser).where(StaffUser.login == "approver"))
        ).scalar_one()
        actions = (await session.scalars(select(AuditEntry.action))).all()
    assert user.locked_until is not None
    assert "console.locked_out" in actions and "console.login_locked" in actions
    await console.sign_in("pr")  # other accounts are unaffected


async def test_login_without_its_csrf_token_is_refused(console: Console) -> None:
    await console.get_html("/console/login")
    resp = await console.client.post(
        "/console/login", data={"login": "pr", "password": PASSWORD}, allow_redirects=False
    )
    assert resp.status == 403
    assert not any(c.startswith(SESSION_COOKIE) for c in resp.headers.getall("Set-Cookie", []))
    forged = "0" * 64
    resp = await console.client.post(
        "/console/login",
        data={"login": "pr", "password": PASSWORD, "csrf_token": forged},
        allow_redirects=False,
    )
    assert resp.status == 403


async def test_sign_out_needs_the_token_and_kills_the_session(console: Console) -> None:
    token = await console.sign_in("pr")
    resp = await console.client.post("/console/logout", data={}, allow_redirects=False)
    assert resp.status == 403
    assert "csrf" in (await resp.text()).lower() or "不正な送信" in await resp.text()
    await console.get_html("/console")  # still signed in
    old = console.client.session.cookie_jar.filter_cookies(console.client.make_url("/"))
    resp = await console.client.post(
        "/console/logout", data={"csrf_token": token}, allow_redirects=False
    )
    assert resp.status == 303
    console.client.session.cookie_jar.update_cookies(old)  # replay the old cookie
    resp = await console.client.get("/console", allow_redirects=False)
    assert resp.status == 303


async def test_sign_in_replaces_any_earlier_session_id(console: Console) -> None:
    console.client.session.cookie_jar.update_cookies({SESSION_COOKIE: "planted-by-attacker"})
    await console.sign_in("pr")
    jar = console.client.session.cookie_jar.filter_cookies(console.client.make_url("/"))
    assert jar[SESSION_COOKIE].value != "planted-by-attacker"


async def test_next_after_sign_in_stays_inside_the_console(console: Console) -> None:
    html = await console.get_html("/console/login?next=//evil.example/x")
    assert 'name="next" value="/console"' in html
    token = csrf_from(html)
    resp = await console.client.post(
        "/console/login",
        data={"login": "pr", "password": PASSWORD, "csrf_token": token, "next": "https://x.y/"},
        allow_redirects=False,
    )
    assert resp.headers["Location"] == "/console"


async def test_navigation_follows_roles(console: Console) -> None:
    await console.sign_in("analyst")
    html = await console.get_html("/console")
    nav = re.search(r'<nav class="site-nav".*?</nav>', html, re.S)
    assert nav is not None
    assert "配信統計" in nav.group(0)
    assert "災害モード" not in nav.group(0) and "新規作成" not in nav.group(0)
