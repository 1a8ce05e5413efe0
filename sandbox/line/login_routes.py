"""LINE Login v2.1 as a LIFF backend uses it: verify a user's access token, read the profile.

Provider routes, in the shapes of LINE's reference (developers.line.biz/en/reference/line-login/):
- `GET  /oauth2/v2.1/verify?access_token=…` → 200 `{"scope", "client_id", "expires_in"}`
  (seconds left); an expired, revoked or unknown token → 400 `{"error": "invalid_request",
  "error_description": "access token expired"}`; no token → 400 `invalid_request`
  "some parameters missed or invalid" (the example of channel-access-token.yml).
- `POST /oauth2/v2.1/revoke` (form: `access_token`, `client_id`, `client_secret` ignored as
  for LIFF channels) → 200 with an empty body, also for a token that is already invalid.
- `GET  /v2/profile` with `Authorization: Bearer <access token>` → 200 `{"userId",
  "displayName", "pictureUrl"?, "statusMessage"?}` (the last two only when set); a missing or
  bad token → 401. LINE does not document that error's body: the sandbox answers
  `{"message": "invalid token"}`, the body LINE documents for an invalid user token elsewhere.

Control routes (tests and the demo stand in for the LIFF SDK's login):
- `POST /_sandbox/login/tokens` `{"userId": "U…", "channelId": "1654000001",
  "expiresIn": 2592000, "scope": "profile openid", "displayName": …, "pictureUrl": …,
  "statusMessage": …}` → the token endpoint's answer (`access_token`, `expires_in`, `scope`,
  `token_type`) plus `client_id` and `userId`
- `GET  /_sandbox/login/tokens?userId=U…&channelId=…` → the tokens and their state
- `POST /_sandbox/login/revoke`, `POST /_sandbox/login/expire` `{"access_token": …}` or
  `{"userId": …, "channelId": …}` → end tokens now; `POST /_sandbox/clock` ages them too

Not simulated: the authorization-code flow and `POST /oauth2/v2.1/token`, ID tokens
(`POST /oauth2/v2.1/verify`: the hub verifies access tokens only), `/oauth2/v2.1/userinfo`,
friendship status, scope checks (scopes are only echoed), rate limits (LINE discloses none).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from sandbox.common import CONTROL_PREFIX

from .errors import LineApiError
from .rules import USER_ID
from .state import LINE_STATE, Clock

VERIFY = "/oauth2/v2.1/verify"
REVOKE = "/oauth2/v2.1/revoke"
PROFILE = "/v2/profile"
PATHS = frozenset({VERIFY, REVOKE, PROFILE})
SANDBOX_LOGIN_CHANNEL_ID = "1657000001"  # the demo's LIFF channel (any digits would do)
TOKEN_LIFETIME_S = 30 * 24 * 3600  # "valid for 30 days after being issued"
EXPIRED = "access token expired"
BAD_PARAMETERS = "some parameters missed or invalid"
INVALID_TOKEN = "invalid token"
_CHANNEL_ID = re.compile(r"^[0-9]{1,20}$")
_MAX_TOKENS = 100_000


@dataclass(slots=True)
class LoginToken:
    access_token: str
    user_id: str
    channel_id: str
    scope: str
    expires_at: float
    display_name: str | None = None
    picture_url: str | None = None
    status_message: str | None = None
    revoked: bool = False

    def status(self, now: float) -> str:
        if self.revoked:
            return "revoked"
        return "active" if self.expires_at > now else "expired"

    def describe(self, now: float) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "userId": self.user_id,
            "client_id": self.channel_id,
            "scope": self.scope,
            "expires_in": max(int(self.expires_at - now), 0),
            "status": self.status(now),
        }


class LoginTokens:
    """User access tokens by value; time comes from the sandbox clock."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.tokens: dict[str, LoginToken] = {}

    def issue(self, user_id: str, channel_id: str, expires_in: int, **extra: Any) -> LoginToken:
        now = self.clock.wall()
        if len(self.tokens) >= _MAX_TOKENS:
            self.tokens = {k: t for k, t in self.tokens.items() if t.status(now) == "active"}
        token = LoginToken(
            access_token="eyJ" + secrets.token_urlsafe(48),  # opaque, JWT-looking like LINE's
            user_id=user_id,
            channel_id=channel_id,
            expires_at=now + expires_in,
            **extra,
        )
        self.tokens[token.access_token] = token
        return token

    def active(self, access_token: str) -> LoginToken | None:
        token = self.tokens.get(access_token)
        if token is None or token.status(self.clock.wall()) != "active":
            return None
        return token

    def select(self, data: dict[str, Any]) -> list[LoginToken]:
        if "access_token" in data:
            token = self.tokens.get(str(data["access_token"]))
            if token is None:
                raise ValueError("no such access_token")
            return [token]
        user, channel = data.get("userId"), data.get("channelId")
        if user is None and channel is None:
            raise ValueError("give access_token, or userId and/or channelId")
        return [
            t
            for t in self.tokens.values()
            if (user is None or t.user_id == user) and (channel is None or t.channel_id == channel)
        ]

    def clear(self) -> None:
        self.tokens.clear()


LOGIN_TOKENS: web.AppKey[LoginTokens] = web.AppKey("line_login_tokens", LoginTokens)


def _oauth_error(description: str) -> web.Response:
    return web.json_response(
        {"error": "invalid_request", "error_description": description}, status=400
    )


# --- LINE Login (provider routes) -----------------------------------------------------------


async def verify(request: web.Request) -> web.Response:
    access_token = request.query.get("access_token", "")
    if not access_token:
        return _oauth_error(BAD_PARAMETERS)
    token = request.app[LOGIN_TOKENS].active(access_token)
    if token is None:
        return _oauth_error(EXPIRED)
    expires_in = int(token.expires_at - request.app[LOGIN_TOKENS].clock.wall())
    return web.json_response(
        {"scope": token.scope, "client_id": token.channel_id, "expires_in": expires_in}
    )


async def revoke(request: web.Request) -> web.Response:
    if request.content_type != "application/x-www-form-urlencoded":
        return _oauth_error(BAD_PARAMETERS)
    form = await request.post()
    access_token, client_id = form.get("access_token"), form.get("client_id")
    if not isinstance(access_token, str) or not isinstance(client_id, str):
        return _oauth_error(BAD_PARAMETERS)
    if not access_token or not client_id:
        return _oauth_error(BAD_PARAMETERS)
    token = request.app[LOGIN_TOKENS].tokens.get(access_token)
    if token is not None and token.channel_id != client_id:
        return _oauth_error(BAD_PARAMETERS)  # a channel may revoke only its own tokens
    if token is not None:
        token.revoked = True
    return web.Response(status=200)


async def profile(request: web.Request) -> web.Response:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    token = request.app[LOGIN_TOKENS].active(value.strip()) if scheme == "Bearer" else None
    if token is None:
        raise LineApiError(401, INVALID_TOKEN)
    names = request.app[LINE_STATE].display_names
    body = {
        "userId": token.user_id,
        "displayName": token.display_name
        or names.get(token.user_id, f"LINE利用者 {token.user_id[-4:]}"),
    }
    if token.picture_url:
        body["pictureUrl"] = token.picture_url
    if token.status_message:
        body["statusMessage"] = token.status_message
    return web.json_response(body)


# --- control routes -------------------------------------------------------------------------


def _bad(message: str) -> web.Response:
    return web.json_response({"message": message}, status=400)


def _optional_str(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{name} must be a string")
    return value


async def post_tokens(request: web.Request) -> web.Response:
    try:
        data = await request.json()
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object")
        user_id, channel_id = data.get("userId"), data.get("channelId")
        if not isinstance(user_id, str) or not USER_ID.match(user_id):
            raise ValueError("userId must be a LINE user id (U + 32 hex digits)")
        if not isinstance(channel_id, str) or not _CHANNEL_ID.match(channel_id):
            raise ValueError("channelId must be a LINE channel id (digits, as a string)")
        expires_in = data.get("expiresIn", TOKEN_LIFETIME_S)
        if type(expires_in) is not int or expires_in <= 0:
            raise ValueError("expiresIn must be a positive number of seconds")
        scope = _optional_str(data, "scope") or "profile openid"
        extra = {
            "display_name": _optional_str(data, "displayName"),
            "picture_url": _optional_str(data, "pictureUrl"),
            "status_message": _optional_str(data, "statusMessage"),
        }
    except ValueError as exc:
        return _bad(str(exc))
    token = request.app[LOGIN_TOKENS].issue(user_id, channel_id, expires_in, scope=scope, **extra)
    return web.json_response(
        {
            "access_token": token.access_token,
            "expires_in": expires_in,
            "scope": token.scope,
            "token_type": "Bearer",
            "client_id": token.channel_id,
            "userId": token.user_id,
        }
    )


async def get_tokens(request: web.Request) -> web.Response:
    tokens = request.app[LOGIN_TOKENS]
    selector = {k: v for k, v in request.query.items() if k in ("userId", "channelId")}
    chosen = tokens.select(selector) if selector else list(tokens.tokens.values())
    now = tokens.clock.wall()
    return web.json_response({"tokens": [t.describe(now) for t in chosen]})


async def _end_tokens(request: web.Request, *, revoke: bool) -> web.Response:
    tokens = request.app[LOGIN_TOKENS]
    try:
        data = await request.json()
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object")
        chosen = tokens.select(data)
    except ValueError as exc:
        return _bad(str(exc))
    now = tokens.clock.wall()
    for token in chosen:
        if revoke:
            token.revoked = True
        else:
            token.expires_at = min(token.expires_at, now)
    return web.json_response({"tokens": [t.describe(now) for t in chosen]})


async def post_revoke(request: web.Request) -> web.Response:
    return await _end_tokens(request, revoke=True)


async def post_expire(request: web.Request) -> web.Response:
    return await _end_tokens(request, revoke=False)


def add_routes(app: web.Application) -> None:
    add = app.router.add_route
    add("GET", VERIFY, verify)
    add("POST", REVOKE, revoke)
    add("GET", PROFILE, profile)
    add("POST", CONTROL_PREFIX + "login/tokens", post_tokens)
    add("GET", CONTROL_PREFIX + "login/tokens", get_tokens)
    add("POST", CONTROL_PREFIX + "login/revoke", post_revoke)
    add("POST", CONTROL_PREFIX + "login/expire", post_expire)
