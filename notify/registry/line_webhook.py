"""LINE webhook: `POST /webhooks/line`.

The signature is Base64(HMAC-SHA256(channel secret, raw body)) in `x-line-signature`. It is
checked over the raw bytes, before anything is parsed, with a constant-time compare; a
missing or forged signature gets 401 and nothing is stored. (line-bot-sdk's
`SignatureValidator` does the same but wants the body as text, and its `WebhookParser`
turns a malformed *known* event into an "unknown" one silently; we need neither: we read
only five fields of each event, with a lenient model of our own.)

Events: `follow` creates or reactivates the resident and their LINE endpoint (consent
granted); `unfollow` marks the endpoint blocked. Every other type, known or not, is
accepted and ignored. Each `webhookEventId` is processed once (table `webhook_events`;
LINE redelivers with `deliveryContext.isRedelivery` after a failed delivery). The whole
request runs in one transaction: either every event of it is applied and recorded, or none.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from notify.db import utcnow
from notify.errors import InvalidInput, Unauthenticated
from notify.models import (
    Consent,
    Endpoint,
    EndpointStatus,
    Resident,
    ResidentStatus,
    WebhookEvent,
)
from notify.registry.profile import create_resident, new_endpoint_token
from notify.registry.routing import routes
from notify.registry.store import find_endpoint, in_transaction
from notify.web.api import Call, read_json
from notify.web.errors import fields_from_validation
from notify.web.keys import DB, SETTINGS

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "x-line-signature"
USER_ID_PATTERN = r"^U[0-9a-f]{32}$"
# What the registry stores from an event: visible ASCII only (a ULID, a type name). A NUL
# elsewhere, in a resident's message text say, is never read and must not refuse the rest.
_TOKEN = r"^[\x21-\x7e]+$"


def sign(secret: str, body: bytes) -> str:
    """The value LINE puts in x-line-signature (also used by tests and the sandbox)."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def signature_ok(secret: str, body: bytes, header: str | None) -> bool:
    if not secret or not header:
        return False
    expected = sign(secret, body).encode("ascii")
    return hmac.compare_digest(expected, header.strip().encode("utf-8", "replace"))


class Source(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str = Field(default="", max_length=64, pattern=r"^[\x21-\x7e]*$")
    userId: str | None = Field(default=None, max_length=64)


class DeliveryContext(BaseModel):
    model_config = ConfigDict(extra="ignore")
    isRedelivery: bool = False


class LineEvent(BaseModel):
    """Only what the registry reads; unknown fields and event types pass through."""

    model_config = ConfigDict(extra="ignore")
    type: str = Field(max_length=64, pattern=_TOKEN)
    webhookEventId: str | None = Field(default=None, max_length=64, pattern=_TOKEN)
    timestamp: int | None = None
    source: Source | None = None
    deliveryContext: DeliveryContext = DeliveryContext()


class WebhookBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    destination: str | None = None
    events: list[dict[str, Any]] = Field(max_length=1000)


class WebhookResult(BaseModel):
    received: int
    duplicates: int
    followed: int
    unfollowed: int
    ignored: int


def parse_body(raw: bytes) -> list[LineEvent]:
    data = read_json(raw)
    try:
        body = WebhookBody.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(
            "Webhook の形式が不正です / malformed webhook body",
            fields=fields_from_validation(exc),
        ) from exc
    events: list[LineEvent] = []
    for i, item in enumerate(body.events):
        try:
            events.append(LineEvent.model_validate(item))
        except ValidationError as exc:
            raise InvalidInput(
                "Webhook の形式が不正です / malformed webhook event",
                fields=fields_from_validation(exc, prefix=f"events.{i}."),
            ) from exc
    return events


@routes.post(
    "/webhooks/line",
    summary="LINE Messaging API webhook (follow / unfollow; other events ignored)",
    auth="public",
    raw_body="application/json",
    response=WebhookResult,
    errors=[400, 401, 422],
)
async def line_webhook(request: web.Request, call: Call[None, None]) -> WebhookResult:
    raw = await request.read()
    secret = request.app[SETTINGS].line_channel_secret
    if not signature_ok(secret, raw, request.headers.get(SIGNATURE_HEADER)):
        raise Unauthenticated("署名が正しくありません / invalid or missing x-line-signature")
    events = parse_body(raw)
    return await in_transaction(request.app[DB], lambda session: apply_events(session, events))


async def apply_events(session: AsyncSession, events: list[LineEvent]) -> WebhookResult:
    result = WebhookResult(received=len(events), duplicates=0, followed=0, unfollowed=0, ignored=0)
    fresh = await _unseen(session, events)
    for event in events:
        if event.webhookEventId is not None:
            if event.webhookEventId not in fresh:
                result.duplicates += 1
                if not event.deliveryContext.isRedelivery:
                    log.info(
                        "LINE event %s seen twice without redelivery flag", event.webhookEventId
                    )
                continue
            fresh.discard(event.webhookEventId)  # a repeat inside this same body is a duplicate
            session.add(WebhookEvent(event_id=event.webhookEventId))
        user_id = event.source.userId if event.source and event.source.type == "user" else None
        if event.type == "follow" and user_id and _valid_user_id(user_id):
            await follow(session, user_id)
            result.followed += 1
        elif event.type == "unfollow" and user_id and _valid_user_id(user_id):
            result.unfollowed += int(await unfollow(session, user_id))
        else:
            result.ignored += 1
    await session.flush()
    return result


def _valid_user_id(user_id: str) -> bool:
    return re.fullmatch(USER_ID_PATTERN, user_id) is not None


async def _unseen(session: AsyncSession, events: list[LineEvent]) -> set[str]:
    ids = {e.webhookEventId for e in events if e.webhookEventId is not None}
    if not ids:
        return set()
    seen = await session.scalars(
        select(WebhookEvent.event_id).where(WebhookEvent.event_id.in_(ids))
    )
    return ids - set(seen)


async def follow(session: AsyncSession, user_id: str) -> Endpoint:
    """Create or reactivate the resident and their LINE endpoint (consent granted)."""
    now = utcnow()
    endpoint = await find_endpoint(session, "line", user_id)
    if endpoint is None:
        resident = await create_resident(session)
        endpoint = Endpoint(
            resident_id=resident.id,
            channel="line",
            address=user_id,
            token=new_endpoint_token(),
        )
        session.add(endpoint)
    else:
        resident_row = await session.get(Resident, endpoint.resident_id)
        if resident_row is not None and resident_row.status != ResidentStatus.ACTIVE:
            resident_row.status = ResidentStatus.ACTIVE
            resident_row.updated_at = now
    endpoint.consent = Consent.GRANTED
    endpoint.consent_at = now
    endpoint.withdrawn_at = None
    endpoint.status = EndpointStatus.ACTIVE
    endpoint.last_error = None
    endpoint.updated_at = now
    await session.flush()
    return endpoint


async def unfollow(session: AsyncSession, user_id: str) -> bool:
    """Mark the LINE endpoint blocked (the user blocked or removed the account)."""
    endpoint = await find_endpoint(session, "line", user_id)
    if endpoint is None:
        return False
    now = utcnow()
    endpoint.status = EndpointStatus.BLOCKED
    endpoint.consent = Consent.WITHDRAWN
    endpoint.withdrawn_at = now
    endpoint.updated_at = now
    return True
