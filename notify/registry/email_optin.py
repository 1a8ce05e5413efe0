"""Email double opt-in and unsubscribe.

- `POST /api/email/subscribe` stores the address (consent pending) and queues a confirmation
  mail (job `send_email_confirmation`, see mailer.py) with a signed, expiring link.
- `GET /email/confirm?t=…` grants consent. The token is `<endpoint id>.<expiry>.<HMAC>`,
  the HMAC binding the address too, so a link dies when the address changes.
- `GET /u/{token}` a plain unsubscribe page (Japanese first) with a one-button form;
  `POST /u/{token}` with `List-Unsubscribe=One-Click` withdraws consent (RFC 8058). The token
  is `Endpoint.token`, 16 opaque characters: the URL stays short (no RFC 2047 folding of the
  List-Unsubscribe header) and never contains the address.

The answer to subscribe never says whether an address was already known.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from notify import audit
from notify.city import CityConfig
from notify.db import utcnow
from notify.errors import InvalidInput
from notify.models import Consent, Endpoint, EndpointStatus
from notify.registry.email_address import check_email
from notify.registry.mailer import render_page
from notify.registry.profile import (
    ProfileIn,
    apply_profile,
    create_resident,
    load_resident,
    new_endpoint_token,
    validated,
)
from notify.registry.routing import routes
from notify.registry.store import find_endpoint, in_transaction
from notify.settings import Settings
from notify.web.api import Call
from notify.web.keys import CITY, DB, REDIS, SETTINGS
from notify.web.throttle import throttle

TOKEN_PATTERN = r"^[A-Za-z0-9_-]{8,32}$"
RESEND_AFTER_S = 600  # at most one confirmation mail per address per 10 minutes


class SubscribeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(min_length=1, max_length=320)
    profile: ProfileIn | None = None


class SubscribeOut(BaseModel):
    status: str
    message: str


# --- signed confirmation links --------------------------------------------------------------


def _mac(secret: str, endpoint_id: int, expires: int, address: str) -> str:
    msg = f"email-confirm|{endpoint_id}|{expires}|{address}".encode()
    digest = hmac.new(secret.encode(), msg, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()  # 144 bits is plenty


def confirm_token(
    settings: Settings, endpoint_id: int, address: str, *, now: float | None = None
) -> str:
    expires = int((now if now is not None else time.time()) + settings.email_confirm_ttl_s)
    return (
        f"{endpoint_id}.{expires}.{_mac(settings.resolved_secret(), endpoint_id, expires, address)}"
    )


def confirm_url(settings: Settings, token: str) -> str:
    return f"{settings.public_url.rstrip('/')}/email/confirm?t={token}"


def unsubscribe_url(settings: Settings, endpoint_token: str) -> str:
    """The short List-Unsubscribe URL of an endpoint (delivery uses it in every mail)."""
    return f"{settings.public_url.rstrip('/')}/u/{endpoint_token}"


def _parse_confirm_token(token: str) -> tuple[int, int, str] | None:
    parts = token.split(".")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit() or len(token) > 80:
        return None
    return int(parts[0]), int(parts[1]), parts[2]


# --- subscribe --------------------------------------------------------------------------------


@routes.post(
    "/api/email/subscribe",
    summary="Subscribe an email address (a confirmation mail follows: double opt-in)",
    auth="public",
    body=SubscribeIn,
    response=SubscribeOut,
    status=202,
    errors=[422, 429],
)
async def subscribe(request: web.Request, call: Call[SubscribeIn, None]) -> SubscribeOut:
    await throttle(request, "subscribe")
    city: CityConfig = request.app[CITY]
    address = check_email(call.body.email).address
    profile = validated(call.body.profile, city)

    async def work(session: AsyncSession) -> int | None:
        endpoint = await find_endpoint(session, "email", address)
        if endpoint is None:
            language = profile.language if profile and profile.language else "ja"
            resident = await create_resident(session, language=language)
            endpoint = Endpoint(
                resident_id=resident.id,
                channel="email",
                address=address,
                consent=Consent.PENDING,
                status=EndpointStatus.ACTIVE,
                token=new_endpoint_token(),
            )
            session.add(endpoint)
            await session.flush()
            if profile is not None:
                await apply_profile(session, resident, profile)
            return endpoint.id
        if endpoint.consent == Consent.GRANTED and endpoint.status == EndpointStatus.ACTIVE:
            return None  # already confirmed: nothing to send, and nothing to reveal
        if endpoint.consent == Consent.PENDING and profile is not None:
            # Nobody has proved they own this address yet: the latest form wins.
            await apply_profile(
                session, await load_resident(session, endpoint.resident_id), profile
            )
        endpoint.consent = Consent.PENDING
        endpoint.updated_at = utcnow()
        return endpoint.id

    endpoint_id = await in_transaction(request.app[DB], work)
    if endpoint_id is not None:
        redis = request.app[REDIS]
        if await redis.set(f"registry:confirm-mail:{endpoint_id}", "1", ex=RESEND_AFTER_S, nx=True):
            await redis.enqueue_job("send_email_confirmation", endpoint_id)
    return SubscribeOut(
        status="confirmation_sent",
        message="確認メールを送りました。メール内のリンクを開くと登録が完了します"
        " / We sent a confirmation mail: open its link to finish.",
    )


# --- confirm ------------------------------------------------------------------------------------


class ConfirmQuery(BaseModel):
    t: str = Field(min_length=1, max_length=80)


def _page(request: web.Request, status: int, kind: str, **extra: str) -> web.Response:
    html = render_page(request.app[CITY], kind, **extra)
    return web.Response(status=status, text=html, content_type="text/html", charset="utf-8")


@routes.get(
    "/email/confirm",
    summary="Confirm an email subscription (link from the confirmation mail)",
    auth="public",
    query=ConfirmQuery,
    content_type="text/html",
    errors=[400, 410],
)
async def confirm(request: web.Request, call: Call[None, ConfirmQuery]) -> web.Response:
    settings: Settings = request.app[SETTINGS]
    parsed = _parse_confirm_token(call.query.t)
    if parsed is None:
        return _page(request, 400, "confirm_invalid")
    endpoint_id, expires, mac = parsed
    async with request.app[DB].transaction() as session:
        endpoint = await session.get(Endpoint, endpoint_id)
        expected = (
            _mac(settings.resolved_secret(), endpoint_id, expires, endpoint.address)
            if endpoint is not None and endpoint.channel == "email"
            else ""
        )
        if endpoint is None or not hmac.compare_digest(expected, mac):
            return _page(request, 400, "confirm_invalid")
        if expires < time.time():
            return _page(request, 410, "confirm_expired")
        if endpoint.consent != Consent.GRANTED or endpoint.status != EndpointStatus.ACTIVE:
            now = utcnow()
            endpoint.consent = Consent.GRANTED
            endpoint.consent_at = now
            endpoint.withdrawn_at = None
            endpoint.status = EndpointStatus.ACTIVE
            endpoint.updated_at = now
            audit.record(
                session,
                ("resident", None),
                "email.confirm",
                target_type="endpoint",
                target_id=endpoint.id,
            )
    return _page(request, 200, "confirmed")


# --- unsubscribe -----------------------------------------------------------------------------


async def _endpoint_by_token(session: AsyncSession, token: str) -> Endpoint | None:
    if not re.fullmatch(TOKEN_PATTERN, token):
        return None
    return (
        await session.execute(select(Endpoint).where(Endpoint.token == token))
    ).scalar_one_or_none()


@routes.get(
    "/u/{token}",
    summary="Unsubscribe page (a form; GET never changes anything)",
    auth="public",
    content_type="text/html",
    errors=[404],
)
async def unsubscribe_page(request: web.Request, call: Call[None, None]) -> web.Response:
    token = call.path["token"]
    async with request.app[DB].sessionmaker() as session:
        endpoint = await _endpoint_by_token(session, token)
    if endpoint is None:
        return _page(request, 404, "unsubscribe_unknown")
    if endpoint.consent == Consent.WITHDRAWN:
        return _page(request, 200, "unsubscribed")
    return _page(request, 200, "unsubscribe_form", form_action=f"/u/{token}")


@routes.post(
    "/u/{token}",
    summary="One-click unsubscribe (RFC 8058: body List-Unsubscribe=One-Click)",
    auth="public",
    raw_body="application/x-www-form-urlencoded",
    content_type="text/html",
    errors=[400, 404],
)
async def unsubscribe(request: web.Request, call: Call[None, None]) -> web.Response:
    form = await request.post()
    if str(form.get("List-Unsubscribe", "")).strip().lower() != "one-click":
        raise InvalidInput(
            "配信停止の要求が不正です / expected List-Unsubscribe=One-Click",
            fields={"List-Unsubscribe": "must be One-Click"},
        )
    async with request.app[DB].transaction() as session:
        endpoint = await _endpoint_by_token(session, call.path["token"])
        if endpoint is None:
            return _page(request, 404, "unsubscribe_unknown")
        if endpoint.consent != Consent.WITHDRAWN:
            now = utcnow()
            endpoint.consent = Consent.WITHDRAWN
            endpoint.withdrawn_at = now
            endpoint.updated_at = now
            audit.record(
                session,
                ("resident", None),
                "endpoint.unsubscribe",
                target_type="endpoint",
                target_id=endpoint.id,
                channel=endpoint.channel,
            )
    return _page(request, 200, "unsubscribed")
