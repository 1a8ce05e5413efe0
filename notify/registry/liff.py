"""Backend of the LIFF profile form: `GET/POST /api/liff/profile`.

The LIFF page sends the user's LIFF access token (`liff.getAccessToken()`) as
`Authorization: Bearer <token>`. The hub never trusts a user id sent by the page: it asks
LINE Login (`settings.line_login_api_url`) to verify the token
(`GET /oauth2/v2.1/verify?access_token=…` → `client_id`, `expires_in`), checks that the token
was issued to our LIFF channel (`settings.line_login_channel_id`), and reads the user id
from `GET /v2/profile`. Tests point the URL at a real fake server on 127.0.0.1.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from notify.db import utcnow
from notify.errors import HubError, NotFound, Unauthenticated
from notify.models import Consent, Endpoint, EndpointStatus
from notify.registry.profile import (
    ProfileIn,
    ProfileOut,
    apply_profile,
    create_resident,
    load_resident,
    new_endpoint_token,
    profile_out,
    validated,
)
from notify.registry.routing import routes
from notify.registry.store import find_endpoint, in_transaction
from notify.settings import Settings
from notify.web.api import Call
from notify.web.keys import AREAS, CITY, DB, SETTINGS

log = logging.getLogger(__name__)
HTTP_CLIENT = "http"  # key in request.app[AREAS]["registry"]
_TIMEOUT = aiohttp.ClientTimeout(total=10)


class UpstreamUnavailable(HubError):
    status = 503
    code = "upstream_unavailable"


_BAD_TOKEN = "LINE の認証に失敗しました / invalid LIFF access token"


async def line_user_from_access_token(
    http: aiohttp.ClientSession, settings: Settings, access_token: str
) -> str:
    """Verify a LIFF access token with LINE Login and return the LINE user id."""
    if not settings.line_login_channel_id:
        raise UpstreamUnavailable("LIFF は設定されていません / LIFF login is not configured")
    base = settings.line_login_api_url.rstrip("/")
    verified = await _get_json(
        http, f"{base}/oauth2/v2.1/verify", params={"access_token": access_token}
    )
    if str(verified.get("client_id")) != settings.line_login_channel_id:
        raise Unauthenticated(_BAD_TOKEN)  # a token of another channel: not for us
    expires_in = verified.get("expires_in")
    if not isinstance(expires_in, int) or expires_in <= 0:
        raise Unauthenticated(_BAD_TOKEN)
    profile = await _get_json(
        http, f"{base}/v2/profile", headers={"Authorization": f"Bearer {access_token}"}
    )
    user_id = profile.get("userId")
    if not isinstance(user_id, str) or not user_id.startswith("U") or len(user_id) > 64:
        raise UpstreamUnavailable("LINE の応答が不正です / unexpected LINE profile response")
    return user_id


async def _get_json(http: aiohttp.ClientSession, url: str, **kwargs: Any) -> dict[str, Any]:
    try:
        async with http.get(url, timeout=_TIMEOUT, **kwargs) as resp:
            if resp.status in (400, 401, 403):
                raise Unauthenticated(_BAD_TOKEN)
            if resp.status != 200:
                raise UpstreamUnavailable(
                    f"LINE に接続できません / LINE Login answered {resp.status}"
                )
            data = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise UpstreamUnavailable(
            f"LINE に接続できません / LINE Login unreachable: {type(exc).__name__}"
        ) from exc
    if not isinstance(data, dict):
        raise UpstreamUnavailable("LINE の応答が不正です / unexpected LINE Login response")
    return data


def _bearer(request: web.Request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 2048:
        raise Unauthenticated("LINE でログインしてください / LIFF access token required")
    return token


async def _line_user(request: web.Request) -> str:
    http: aiohttp.ClientSession = request.app[AREAS]["registry"][HTTP_CLIENT]
    return await line_user_from_access_token(http, request.app[SETTINGS], _bearer(request))


async def _endpoint_for(session: AsyncSession, user_id: str) -> Endpoint:
    """The user's LINE endpoint; created (consent pending) if they opened LIFF before following."""
    endpoint = await find_endpoint(session, "line", user_id)
    if endpoint is not None:
        return endpoint
    resident = await create_resident(session)
    endpoint = Endpoint(
        resident_id=resident.id,
        channel="line",
        address=user_id,
        consent=Consent.PENDING,  # granted by the follow event
        status=EndpointStatus.ACTIVE,
        token=new_endpoint_token(),
    )
    session.add(endpoint)
    await session.flush()
    return endpoint


@routes.get(
    "/api/liff/profile",
    summary="The LINE user's profile (for pre-filling the LIFF form; 404 before any sign-up)",
    auth="public",
    response=ProfileOut,
    errors=[401, 404, 503],
)
async def get_liff_profile(request: web.Request, call: Call[None, None]) -> ProfileOut:
    user_id = await _line_user(request)
    async with request.app[DB].sessionmaker() as session:
        endpoint = await find_endpoint(session, "line", user_id)
        if endpoint is None:
            raise NotFound("まだ登録がありません / not registered yet")
        return await profile_out(session, await load_resident(session, endpoint.resident_id))


@routes.post(
    "/api/liff/profile",
    summary="Set ward / children / topics / language from the LIFF form",
    auth="public",
    body=ProfileIn,
    response=ProfileOut,
    errors=[401, 422, 503],
)
async def post_liff_profile(request: web.Request, call: Call[ProfileIn, None]) -> ProfileOut:
    user_id = await _line_user(request)
    profile = validated(call.body, request.app[CITY])
    assert profile is not None

    async def work(session: AsyncSession) -> ProfileOut:
        endpoint = await _endpoint_for(session, user_id)
        resident = await load_resident(session, endpoint.resident_id)
        await apply_profile(session, resident, profile)
        endpoint.updated_at = utcnow()
        return await profile_out(session, resident)

    return await in_transaction(request.app[DB], work)
