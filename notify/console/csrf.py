"""CSRF protection for every unsafe request that a cookie authenticates.

Signed-in forms and scripts use the session's synchronizer token (form field `csrf_token` or
header `X-CSRF-Token`). The sign-in form, which has no session yet, uses a signed double
submit: a random cookie plus a form field holding its HMAC under the hub's secret. Every
comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from aiohttp import web

from notify.errors import Forbidden
from notify.web.keys import SETTINGS

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
LOGIN_COOKIE = "hub_login_csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class CsrfRefused(Forbidden):
    code = "csrf_failed"

    def __init__(self) -> None:
        super().__init__(
            "フォームの有効期限が切れたか、不正な送信です。ページを開き直してください"
            " / CSRF token missing or invalid: reload the page and try again"
        )


def tokens_match(expected: str, given: str | None) -> bool:
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def check_header(request: web.Request, expected: str) -> None:
    """For the JSON API reached with a session cookie: the token must come in a header."""
    if request.method in SAFE_METHODS:
        return
    if not tokens_match(expected, request.headers.get(CSRF_HEADER)):
        raise CsrfRefused()


def check_form(request: web.Request, form_value: str | None, expected: str) -> None:
    given = form_value or request.headers.get(CSRF_HEADER)
    if not tokens_match(expected, given):
        raise CsrfRefused()


# --- the sign-in form (no session yet) ------------------------------------------------------


def _sign(request: web.Request, nonce: str) -> str:
    key = request.app[SETTINGS].resolved_secret().encode()
    return hmac.new(key, b"login-csrf:" + nonce.encode(), hashlib.sha256).hexdigest()


def login_token(request: web.Request) -> tuple[str, str]:
    """(nonce for the cookie, value for the form). Reuses the visitor's nonce (several tabs)."""
    nonce = request.cookies.get(LOGIN_COOKIE)
    if not nonce or len(nonce) > 64:
        nonce = secrets.token_urlsafe(24)
    return nonce, _sign(request, nonce)


def set_login_cookie(request: web.Request, response: web.StreamResponse, nonce: str) -> None:
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        path="/console/login",
        httponly=True,
        samesite="Strict",
        secure=not request.app[SETTINGS].demo,
    )


def check_login_token(request: web.Request, form_value: str | None) -> None:
    nonce = request.cookies.get(LOGIN_COOKIE)
    if not nonce or len(nonce) > 64 or not tokens_match(_sign(request, nonce), form_value):
        raise CsrfRefused()
