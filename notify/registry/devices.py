"""The city app's API: register a device (FCM token), refresh its token, leave, set the profile.

Registration returns a device credential `dev_<endpoint id>_<secret>`; only a hash of the
secret is stored (`Endpoint.secret_hash`). Every other call authenticates with it
(`auth="device"`). Registering means the app already holds the OS notification permission,
so consent is granted at once.
"""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from notify import audit
from notify.db import utcnow
from notify.errors import Conflict, NotFound, Unauthenticated
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
from notify.registry.store import delete_endpoint, find_endpoint, in_transaction
from notify.web.api import Call
from notify.web.auth import Principal, device_credential, hash_token, new_device_secret
from notify.web.keys import CITY, DB
from notify.web.throttle import throttle

Platform = Literal["android", "ios", "web"]
# FCM registration tokens are ~150-200 characters of base64url plus ':' ; keep a firm cap.
FcmToken = Field(min_length=20, max_length=512, pattern=r"^[A-Za-z0-9_:\-]+$")


class DeviceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fcm_token: str = FcmToken
    platform: Platform
    profile: ProfileIn | None = None


class DeviceOut(BaseModel):
    device_id: int
    credential: str  # shown once; the app keeps it in secure storage
    profile: ProfileOut


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fcm_token: str = FcmToken
    platform: Platform | None = None


_TAKEN = "この端末はすでに登録されています / this FCM token is already registered"


@routes.post(
    "/api/app/devices",
    summary="Register an app device (FCM token); returns its credential",
    auth="public",
    body=DeviceIn,
    response=DeviceOut,
    status=201,
    errors=[409, 422, 429],
)
async def register_device(request: web.Request, call: Call[DeviceIn, None]) -> DeviceOut:
    await throttle(request, "device")
    body = call.body
    profile = validated(body.profile, request.app[CITY])
    secret = new_device_secret()

    async def work(session: AsyncSession) -> DeviceOut:
        if await find_endpoint(session, "fcm", body.fcm_token) is not None:
            raise Conflict(_TAKEN, fields={"fcm_token": "already registered"})
        language = profile.language if profile and profile.language else "ja"
        resident = await create_resident(session, language=language)
        now = utcnow()
        endpoint = Endpoint(
            resident_id=resident.id,
            channel="fcm",
            address=body.fcm_token,
            platform=body.platform,
            consent=Consent.GRANTED,
            consent_at=now,
            status=EndpointStatus.ACTIVE,
            secret_hash=hash_token(secret),
            token=new_endpoint_token(),
        )
        session.add(endpoint)
        await session.flush()
        if profile is not None:
            await apply_profile(session, resident, profile)
        return DeviceOut(
            device_id=endpoint.id,
            credential=device_credential(endpoint.id, secret),
            profile=await profile_out(session, resident),
        )

    return await in_transaction(request.app[DB], work)


async def _own_endpoint(session: AsyncSession, principal: Principal | None) -> Endpoint:
    if principal is None or principal.endpoint_id is None:
        raise Unauthenticated("端末の認証に失敗しました / device authentication required")
    endpoint = await session.get(Endpoint, principal.endpoint_id)
    if endpoint is None:
        raise NotFound("端末が見つかりません / device not found")
    return endpoint


@routes.put(
    "/api/app/devices/me/token",
    summary="Replace this device's FCM token (after the app got a new one)",
    auth="device",
    body=TokenIn,
    status=204,
    errors=[401, 409, 422],
)
async def refresh_token(request: web.Request, call: Call[TokenIn, None]) -> None:
    async def work(session: AsyncSession) -> None:
        endpoint = await _own_endpoint(session, call.principal)
        other = await find_endpoint(session, "fcm", call.body.fcm_token)
        if other is not None and other.id != endpoint.id:
            raise Conflict(_TAKEN, fields={"fcm_token": "already registered"})
        endpoint.address = call.body.fcm_token
        if call.body.platform is not None:
            endpoint.platform = call.body.platform
        # A fresh token revives a device whose old token the provider had dropped.
        endpoint.status = EndpointStatus.ACTIVE
        endpoint.last_error = None
        endpoint.updated_at = utcnow()

    await in_transaction(request.app[DB], work)


@routes.delete(
    "/api/app/devices/me",
    summary="Unregister this device (and the resident, if it was their last endpoint)",
    auth="device",
    status=204,
    errors=[401],
)
async def delete_device(request: web.Request, call: Call[None, None]) -> None:
    async with request.app[DB].transaction() as session:
        endpoint = await _own_endpoint(session, call.principal)
        resident_gone = await delete_endpoint(session, endpoint)
        audit.record(
            session,
            ("resident", None),
            "device.delete",
            target_type="endpoint",
            target_id=endpoint.id,
            resident_erased=resident_gone,
        )


@routes.get(
    "/api/app/profile",
    summary="This device's resident profile",
    auth="device",
    response=ProfileOut,
    errors=[401],
)
async def get_app_profile(request: web.Request, call: Call[None, None]) -> ProfileOut:
    async with request.app[DB].sessionmaker() as session:
        endpoint = await _own_endpoint(session, call.principal)
        return await profile_out(session, await load_resident(session, endpoint.resident_id))


@routes.put(
    "/api/app/profile",
    summary="Set ward, language, children, topics, quiet hours, preferred channel",
    auth="device",
    body=ProfileIn,
    response=ProfileOut,
    errors=[401, 422],
)
async def put_app_profile(request: web.Request, call: Call[ProfileIn, None]) -> ProfileOut:
    profile = validated(call.body, request.app[CITY])
    assert profile is not None

    async def work(session: AsyncSession) -> ProfileOut:
        endpoint = await _own_endpoint(session, call.principal)
        resident = await load_resident(session, endpoint.resident_id)
        await apply_profile(session, resident, profile)
        return await profile_out(session, resident)

    return await in_transaction(request.app[DB], work)
