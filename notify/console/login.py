"""Sign-in, sign-out and the language switch."""

from __future__ import annotations

import re

from aiohttp import web

from notify.console.auth import authenticate
from notify.console.csrf import (
    CSRF_FIELD,
    CsrfRefused,
    check_login_token,
    login_token,
    set_login_cookie,
)
from notify.console.i18n import LANG_COOKIE, Lang, parse_lang, pick
from notify.console.pages import Viewer, console_page, see_other
from notify.console.render import render
from notify.console.sessions import (
    clear_session_cookie,
    create_session,
    destroy_session,
    load_session,
    set_session_cookie,
)
from notify.staff import LOCKOUT, MAX_FAILED_LOGINS
from notify.web.keys import CITY, DB, SETTINGS

routes = web.RouteTableDef()


# A console path in visible ASCII: a control character in Location would be a header
# injection (aiohttp refuses to send it and drops the connection).
_CONSOLE_PATH = re.compile(r"/console(?:[/?][\x21-\x7e]*)?")


def safe_next(value: str | None) -> str:
    """Only paths inside the console: never an absolute URL (no open redirect)."""
    if not value or not _CONSOLE_PATH.fullmatch(value) or "//" in value or "\\" in value:
        return "/console"
    return value


def _login_page(
    request: web.Request, *, error: str | None = None, login: str = "", status: int = 200
) -> web.Response:
    lang = parse_lang(request.cookies.get(LANG_COOKIE))
    nonce, token = login_token(request)
    response = render(
        request,
        "login.html",
        {
            "lang": lang,
            "city": request.app[CITY],
            "csrf_token": token,
            "next": safe_next(request.query.get("next")),
            "error": error,
            "login": login,
            "max_failed": MAX_FAILED_LOGINS,
            "lockout_minutes": int(LOCKOUT.total_seconds() // 60),
            "path": request.path,
            "path_qs": request.path_qs,
            "me": None,
            "nav": [],
            "current_nav": None,
            "notice": None,
            "field_errors": {},
        },
        status=status,
    )
    set_login_cookie(request, response, nonce)
    return response


@routes.get("/console/login")
async def login_form(request: web.Request) -> web.StreamResponse:
    if await load_session(request) is not None:
        return see_other(safe_next(request.query.get("next")))
    return _login_page(request)


@routes.post("/console/login")
async def login_submit(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    lang: Lang = parse_lang(request.cookies.get(LANG_COOKIE))
    token = form.get(CSRF_FIELD)
    try:
        check_login_token(request, token if isinstance(token, str) else None)
    except CsrfRefused as exc:
        return _login_page(request, error=pick(exc.message, lang), status=403)
    login = str(form.get("login", "")).strip()[:64]
    if "\x00" in login:  # no login holds one, and PostgreSQL cannot compare with it
        login = ""
    password = str(form.get("password", ""))[:1024]
    result = await authenticate(request.app[DB], login, password)
    if result.staff is None:
        message = (
            "Sign-in failed: check your login and password. After {n} failures in a row the"
            " account is locked for {m} minutes."
            if lang == "en"
            else "ログインできませんでした。ログイン名とパスワードを確認してください。"
            "{n}回続けて失敗すると{m}分間ロックされます。"
        ).format(n=MAX_FAILED_LOGINS, m=int(LOCKOUT.total_seconds() // 60))
        return _login_page(request, error=message, login=login, status=401)
    await destroy_session(request)  # never keep a session id from before sign-in (fixation)
    session_id, _ = await create_session(request, result.staff.id)
    target = safe_next(str(form.get("next", "")))
    response = see_other(target)
    set_session_cookie(request, response, session_id)
    response.del_cookie("hub_login_csrf", path="/console/login")
    return response


@routes.post("/console/logout")
@console_page()
async def logout(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    await destroy_session(request)
    response = see_other("/console/login")
    clear_session_cookie(request, response)
    return response


@routes.get("/console/lang/{lang}")
async def switch_language(request: web.Request) -> web.StreamResponse:
    """A plain link (works before sign-in): sets the language cookie and goes back."""
    lang = parse_lang(request.match_info["lang"])
    response = see_other(safe_next(request.query.get("next")))
    response.set_cookie(
        LANG_COOKIE,
        lang,
        path="/",
        max_age=365 * 24 * 3600,
        samesite="Lax",
        httponly=True,
        secure=not request.app[SETTINGS].demo,
    )
    return response
